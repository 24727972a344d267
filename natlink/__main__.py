from natlink.cli import console

console()
