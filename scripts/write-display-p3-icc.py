"""Writes a Display P3 ICC profile (v4 matrix/TRC: the P3 primaries with a D65 white adapted
to D50, the sRGB tone curve; the colorants Apple's own profile carries) to the path given,
for scripts/make-colour-fixtures.sh: no Debian package ships one."""

import struct
import sys

def s15(v): return struct.pack('>i', round(v*65536))
def xyz(x,y,z): return b'XYZ ' + b'\0'*4 + s15(x)+s15(y)+s15(z)
def para(): # type 3: sRGB curve
    g,a,b,c,d = 2.4, 1/1.055, 0.055/1.055, 1/12.92, 0.04045
    return b'para'+b'\0'*4+struct.pack('>H',3)+b'\0\0'+b''.join(s15(v) for v in (g,a,b,c,d))
def mluc(text):
    t=text.encode('utf-16-be')
    return b'mluc'+b'\0'*4+struct.pack('>II',1,12)+b'enUS'+struct.pack('>II',len(t),28)+t
tags=[(b'desc',mluc('Display P3')),(b'cprt',mluc('No copyright, use freely')),
      (b'wtpt',xyz(0.9642,1.0,0.8249)),
      (b'rXYZ',xyz(0.515121,0.241196,-0.001053)),(b'gXYZ',xyz(0.291977,0.692245,0.041885)),(b'bXYZ',xyz(0.157104,0.066574,0.784073)),
      (b'rTRC',para()),(b'gTRC',para()),(b'bTRC',para())]
off=128+4+12*len(tags); table=b''; data=b''
for sig,body in tags:
    while (off+len(data))%4: data+=b'\0'
    table+=sig+struct.pack('>II',off+len(data),len(body)); data+=body
body=struct.pack('>I',len(tags))+table+data
size=128+len(body)
hdr=struct.pack('>I',size)+b'none'+bytes([4,0x30,0,0])+b'mntr'+b'RGB '+b'XYZ '+b'\0'*12+b'acsp'+b'APPL'+b'\0'*4+b'\0'*8+b'\0'*8+struct.pack('>I',0)+s15(0.9642)+s15(1.0)+s15(0.8249)+b'\0'*4+b'\0'*16+b'\0'*28
assert len(hdr)==128, len(hdr)
open(sys.argv[1], 'wb').write(hdr+body)
