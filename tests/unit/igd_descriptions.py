"""Root descriptions shaped like real IGDs', for the parser's table tests and the fake gateway (which serves them).

MINIUPNPD_V2 is miniupnpd 2.3.1's, fetched from the lab router (IGD v2, one WANIPConnection:2). FRITZ is laid out
like a FRITZ!Box's igddesc.xml: one WANConnectionDevice holding WANIPConnection:1 then WANPPPConnection:1 (in
PPPoE mode only the PPP one is connected; miniupnpc takes the first). TWO_DEVICES is Broadcom-style: two
WANConnectionDevices, a URLBase naming another host than the gateway, control URLs with colons in the path.
"""

from __future__ import annotations

MINIUPNPD_V2 = (
    '<?xml version="1.0"?>\n<root xmlns="urn:schemas-upnp-org:device-1-0" configId="1337"><specVersion>'
    '<major>1</major><minor>1</minor></specVersion><device>'
    '<deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:2</deviceType>'
    '<friendlyName>natlink lab router</friendlyName><manufacturer>Debian</manufacturer>'
    '<manufacturerURL>http://www.debian.org/</manufacturerURL><modelDescription>Debian router</modelDescription>'
    '<modelName>natlink-lab</modelName><modelNumber>1</modelNumber><modelURL>http://www.debian.org/</modelURL>'
    '<serialNumber>00000000</serialNumber><UDN>uuid:ef767d4a-aaa4-46ee-bfbd-ada3c568ce4d</UDN><serviceList>'
    '<service><serviceType>urn:schemas-upnp-org:service:Layer3Forwarding:1</serviceType>'
    '<serviceId>urn:upnp-org:serviceId:L3Forwarding1</serviceId><SCPDURL>/L3F.xml</SCPDURL>'
    '<controlURL>/ctl/L3F</controlURL><eventSubURL>/evt/L3F</eventSubURL></service><service>'
    '<serviceType>urn:schemas-upnp-org:service:DeviceProtection:1</serviceType>'
    '<serviceId>urn:upnp-org:serviceId:DeviceProtection1</serviceId><SCPDURL>/DP.xml</SCPDURL>'
    '<controlURL>/ctl/DP</controlURL><eventSubURL>/evt/DP</eventSubURL></service></serviceList><deviceList>'
    '<device><deviceType>urn:schemas-upnp-org:device:WANDevice:2</deviceType>'
    '<friendlyName>WANDevice</friendlyName><manufacturer>MiniUPnP</manufacturer>'
    '<manufacturerURL>http://miniupnp.free.fr/</manufacturerURL><modelDescription>WAN Device</modelDescription>'
    '<modelName>WAN Device</modelName><modelNumber>20221221</modelNumber>'
    '<modelURL>http://miniupnp.free.fr/</modelURL><serialNumber>00000000</serialNumber>'
    '<UDN>uuid:ef767d4a-aaa4-46ee-bfbd-ada3c568ce4e</UDN><UPC>000000000000</UPC><serviceList><service>'
    '<serviceType>urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1</serviceType>'
    '<serviceId>urn:upnp-org:serviceId:WANCommonIFC1</serviceId><SCPDURL>/WANCfg.xml</SCPDURL>'
    '<controlURL>/ctl/CmnIfCfg</controlURL><eventSubURL>/evt/CmnIfCfg</eventSubURL></service></serviceList>'
    '<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:2</deviceType>'
    '<friendlyName>WANConnectionDevice</friendlyName><manufacturer>MiniUPnP</manufacturer>'
    '<manufacturerURL>http://miniupnp.free.fr/</manufacturerURL>'
    '<modelDescription>MiniUPnP daemon</modelDescription><modelName>MiniUPnPd</modelName>'
    '<modelNumber>20221221</modelNumber><modelURL>http://miniupnp.free.fr/</modelURL>'
    '<serialNumber>00000000</serialNumber><UDN>uuid:ef767d4a-aaa4-46ee-bfbd-ada3c568ce4f</UDN>'
    '<UPC>000000000000</UPC><serviceList><service>'
    '<serviceType>urn:schemas-upnp-org:service:WANIPConnection:2</serviceType>'
    '<serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId><SCPDURL>/WANIPCn.xml</SCPDURL>'
    '<controlURL>/ctl/IPConn</controlURL><eventSubURL>/evt/IPConn</eventSubURL></service><service>'
    '<serviceType>urn:schemas-upnp-org:service:WANIPv6FirewallControl:1</serviceType>'
    '<serviceId>urn:upnp-org:serviceId:WANIPv6Firewall1</serviceId><SCPDURL>/WANIP6FC.xml</SCPDURL>'
    '<controlURL>/ctl/IP6FCtl</controlURL><eventSubURL>/evt/IP6FCtl</eventSubURL></service></serviceList>'
    '</device></deviceList></device></deviceList><presentationURL>http://10.0.1.1/</presentationURL></device>'
    '</root>'
)

FRITZ = """<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0">
<specVersion><major>1</major><minor>0</minor></specVersion>
<device>
<deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>
<friendlyName>FRITZ!Box 7490</friendlyName>
<manufacturer>AVM Berlin</manufacturer>
<modelName>FRITZ!Box 7490</modelName>
<UDN>uuid:75802409-bccb-40e7-8e6c-989BCB2B93B0</UDN>
<serviceList>
<service>
<serviceType>urn:schemas-any-com:service:Any:1</serviceType>
<serviceId>urn:any-com:serviceId:any1</serviceId>
<controlURL>/igdupnp/control/any</controlURL>
<eventSubURL>/igdupnp/control/any</eventSubURL>
<SCPDURL>/any.xml</SCPDURL>
</service>
</serviceList>
<deviceList>
<device>
<deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType>
<friendlyName>WANDevice - FRITZ!Box 7490</friendlyName>
<UDN>uuid:76802409-bccb-40e7-8e6b-989BCB2B93B0</UDN>
<serviceList>
<service>
<serviceType>urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1</serviceType>
<serviceId>urn:upnp-org:serviceId:WANCommonIFC1</serviceId>
<controlURL>/igdupnp/control/WANCommonIFC1</controlURL>
<eventSubURL>/igdupnp/control/WANCommonIFC1</eventSubURL>
<SCPDURL>/igdicfgSCPD.xml</SCPDURL>
</service>
</serviceList>
<deviceList>
<device>
<deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType>
<friendlyName>WANConnectionDevice - FRITZ!Box 7490</friendlyName>
<UDN>uuid:76802409-bccb-40e7-8e6a-989BCB2B93B0</UDN>
<serviceList>
<service>
<serviceType>urn:schemas-upnp-org:service:WANDSLLinkConfig:1</serviceType>
<serviceId>urn:upnp-org:serviceId:WANDSLLinkC1</serviceId>
<controlURL>/igdupnp/control/WANDSLLinkC1</controlURL>
<eventSubURL>/igdupnp/control/WANDSLLinkC1</eventSubURL>
<SCPDURL>/igddslSCPD.xml</SCPDURL>
</service>
<service>
<serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType>
<serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId>
<controlURL>/igdupnp/control/WANIPConn1</controlURL>
<eventSubURL>/igdupnp/control/WANIPConn1</eventSubURL>
<SCPDURL>/igdconnSCPD.xml</SCPDURL>
</service>
<service>
<serviceType>urn:schemas-upnp-org:service:WANPPPConnection:1</serviceType>
<serviceId>urn:upnp-org:serviceId:WANPPPConn1</serviceId>
<controlURL>/igdupnp/control/WANPPPConn1</controlURL>
<eventSubURL>/igdupnp/control/WANPPPConn1</eventSubURL>
<SCPDURL>/igdpppSCPD.xml</SCPDURL>
</service>
</serviceList>
</device>
</deviceList>
</device>
</deviceList>
<presentationURL>http://fritz.box</presentationURL>
</device>
</root>
"""

TWO_DEVICES = """<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0">
<specVersion><major>1</major><minor>0</minor></specVersion>
<URLBase>http://192.168.1.1:5431/</URLBase>
<device>
<deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>
<friendlyName>Broadcom ADSL Router</friendlyName>
<UDN>uuid:00000000-0000-0000-0001-001a2b3c4d5e</UDN>
<serviceList>
<service>
<serviceType>urn:schemas-upnp-org:service:Layer3Forwarding:1</serviceType>
<serviceId>urn:upnp-org:serviceId:L3Forwarding1</serviceId>
<controlURL>/uuid:00000000-0000-0000-0001-001a2b3c4d5e/Layer3Forwarding:1</controlURL>
<eventSubURL>/uuid:00000000-0000-0000-0001-001a2b3c4d5e/Layer3Forwarding:1</eventSubURL>
<SCPDURL>/dynsvc/Layer3Forwarding:1.xml</SCPDURL>
</service>
</serviceList>
<deviceList>
<device>
<deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType>
<UDN>uuid:00000000-0000-0000-0002-001a2b3c4d5e</UDN>
<serviceList>
<service>
<serviceType>urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1</serviceType>
<serviceId>urn:upnp-org:serviceId:WANCommonIFC1</serviceId>
<controlURL>/uuid:00000000-0000-0000-0002-001a2b3c4d5e/WANCommonInterfaceConfig:1</controlURL>
<eventSubURL>/uuid:00000000-0000-0000-0002-001a2b3c4d5e/WANCommonInterfaceConfig:1</eventSubURL>
<SCPDURL>/dynsvc/WANCommonInterfaceConfig:1.xml</SCPDURL>
</service>
</serviceList>
<deviceList>
<device>
<deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType>
<UDN>uuid:00000000-0000-0000-0003-001a2b3c4d5e</UDN>
<serviceList>
<service>
<serviceType>urn:schemas-upnp-org:service:WANPPPConnection:1</serviceType>
<serviceId>urn:upnp-org:serviceId:WANPPPConn1</serviceId>
<controlURL>/uuid:00000000-0000-0000-0003-001a2b3c4d5e/WANPPPConnection:1</controlURL>
<eventSubURL>/uuid:00000000-0000-0000-0003-001a2b3c4d5e/WANPPPConnection:1</eventSubURL>
<SCPDURL>/dynsvc/WANPPPConnection:1.xml</SCPDURL>
</service>
</serviceList>
</device>
<device>
<deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType>
<UDN>uuid:00000000-0000-0000-0004-001a2b3c4d5e</UDN>
<serviceList>
<service>
<serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType>
<serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId>
<controlURL>http://192.168.1.1:5431/uuid:00000000-0000-0000-0004-001a2b3c4d5e/WANIPConnection:1</controlURL>
<eventSubURL>/uuid:00000000-0000-0000-0004-001a2b3c4d5e/WANIPConnection:1</eventSubURL>
<SCPDURL>/dynsvc/WANIPConnection:1.xml</SCPDURL>
</service>
</serviceList>
</device>
</deviceList>
</device>
</deviceList>
</device>
</root>
"""


def igd(device_type: str, services: list[tuple[str, str]]) -> str:
    """A minimal root description: one root device holding ``services`` ((serviceType, controlURL)) in one
    WANDevice / WANConnectionDevice, as a second IGD answering SSDP would."""
    listed = "".join(f"<service><serviceType>{t}</serviceType><serviceId>urn:upnp-org:serviceId:s{i}</serviceId>"
                     f"<controlURL>{c}</controlURL><eventSubURL>{c}/evt</eventSubURL><SCPDURL>/s{i}.xml</SCPDURL>"
                     "</service>" for i, (t, c) in enumerate(services))
    return ('<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0"><specVersion><major>1</major>'
            f'<minor>0</minor></specVersion><device><deviceType>{device_type}</deviceType>'
            '<UDN>uuid:igd-root</UDN><deviceList><device><deviceType>urn:schemas-upnp-org:device:WANDevice:1'
            '</deviceType><deviceList><device><deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1'
            f'</deviceType><UDN>uuid:igd-wcd</UDN><serviceList>{listed}</serviceList></device></deviceList>'
            '</device></deviceList></device></root>')
