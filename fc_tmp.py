import sys, json, tempfile
from pathlib import Path
from natlink.lab import Lab
d = Path(tempfile.mkdtemp())
cfg = d / "c.toml"
cfg.write_text(f'[router]\ntimeout = 2\n[public_ip]\nsources = ["router"]\n[[mapping]]\nname = "rdp"\nexternal_port = 3390\ninternal_port = 3389\n[[probe]]\nmapping = "rdp"\nvia = "hairpin"\n[service]\nstate_dir = "{d}/state"\n')
def keys(o, depth=0):
    if isinstance(o, dict):
        return {k: keys(v, depth+1) if depth < 1 else type(v).__name__ for k, v in o.items()}
    if isinstance(o, list):
        return [keys(o[0], depth)] if o else []
    return type(o).__name__
with Lab() as lab:
    for a in (["check-config"], ["map", "--dry-run"], ["map"], ["mappings"], ["ip"], ["probe"], ["status"], ["doctor", "--no-hairpin"], ["unmap"], ["ddns"], ["init", "--root", str(d/"r")], ["run", "--once"]):
        r = lab.run("lan", [sys.executable, "-m", "natlink", "--json", "-c", str(cfg), *a], check=False, timeout=60)
        try:
            doc = json.loads(r.stdout)
            print(a, r.returncode, json.dumps(keys(doc)))
        except Exception as e:
            print(a, r.returncode, "NOJSON", r.stdout[:200], r.stderr[:300])
