#!/usr/bin/env python3
"""png_stats.py FILE: width, height and the variance of the grey level of a
PNG (8-bit grey, grey+alpha, RGB or RGBA, not interlaced), decoded with zlib
and struct only. Prints "WIDTH HEIGHT VARIANCE"; exits 1 with the reason when
the file is no such PNG. The browser test uses it to tell a drawn page from a
blank one (a blank page has variance 0)."""
import struct
import sys
import zlib

CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}


def chunks(data):
    pos = 8
    while pos + 12 <= len(data):
        n, kind = struct.unpack('>I4s', data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if len(body) != n:
            raise ValueError('chunk %r cut short at byte %d' % (kind, pos))
        yield kind, body
        pos += 12 + n


def unfilter(kind, line, prev, bpp):
    """one scanline back from its filter (PNG spec 9.2)"""
    if kind == 0:
        return line
    out = bytearray(line)
    for i in range(len(out)):
        a = out[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        if kind == 1:
            p = a
        elif kind == 2:
            p = b
        elif kind == 3:
            p = (a + b) >> 1
        elif kind == 4:
            pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
            p = a if pa <= pb and pa <= pc else b if pb <= pc else c
        else:
            raise ValueError('scanline filter %d' % kind)
        out[i] = (out[i] + p) & 255
    return out


def stats(path):
    data = open(path, 'rb').read()
    if data[:8] != b'\x89PNG\r\n\x1a\n':
        raise ValueError('not a PNG signature')
    head, idat = None, b''
    for kind, body in chunks(data):
        if kind == b'IHDR':
            head = struct.unpack('>IIBBBBB', body)
        elif kind == b'IDAT':
            idat += body
    if not head:
        raise ValueError('no IHDR')
    w, h, depth, ctype, _, _, interlace = head
    if depth != 8 or ctype not in CHANNELS or interlace:
        raise ValueError('depth %d, colour type %d, interlace %d: not read here' % (depth, ctype, interlace))
    bpp = CHANNELS[ctype]
    raw = zlib.decompress(idat)
    stride = w * bpp
    if len(raw) != h * (stride + 1):
        raise ValueError('%d bytes of image data, want %d' % (len(raw), h * (stride + 1)))
    prev = bytes(stride)
    n = total = total2 = 0
    for y in range(h):
        p = y * (stride + 1)
        line = unfilter(raw[p], raw[p + 1:p + 1 + stride], prev, bpp)
        prev = line
        if y % 2:
            continue
        for x in range(0, stride, bpp * 2):
            g = line[x] if bpp < 3 else (line[x] * 3 + line[x + 1] * 6 + line[x + 2]) // 10
            n += 1
            total += g
            total2 += g * g
    mean = total / n if n else 0
    return w, h, (total2 / n - mean * mean) if n else 0


if __name__ == '__main__':
    try:
        w, h, var = stats(sys.argv[1])
    except (OSError, ValueError, zlib.error, struct.error) as e:
        sys.exit('%s: %s' % (sys.argv[1], e))
    print(w, h, '%.1f' % var)
