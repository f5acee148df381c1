#!/usr/bin/env python3
"""Difference of two callgrind profiles, function by function (self or inclusive cost):
   bench/cgdiff.py BIG.callgrind SMALL.callgrind [--inclusive] [--per N] [--top K]
Prints the functions whose cost grew most from SMALL to BIG, optionally divided by N (the
difference in connections or deliveries between the two runs)."""
import subprocess, sys, re
args = sys.argv[1:]
incl = '--inclusive' in args
per = float(args[args.index('--per') + 1]) if '--per' in args else 1.0
top = int(args[args.index('--top') + 1]) if '--top' in args else 40
big, small = [a for a in args if a.endswith('.callgrind') or '.callgrind.' in a][:2]
def load(f):
    out = subprocess.run(['callgrind_annotate', f'--inclusive={"yes" if incl else "no"}', '--threshold=100', f],
                         capture_output=True, text=True).stdout
    d = {}
    for line in out.splitlines():
        m = re.match(r'^\s*([0-9,]+) \([ 0-9.]+%\)  (\S.*?)(?: \[[^\]]*\])?$', line)
        if not m or '=>' in line or 'PROGRAM TOTALS' in line:
            continue
        name = m.group(2)
        if ':' not in name:
            continue
        fn = name.split(':', 1)[1]
        d[fn] = d.get(fn, 0) + int(m.group(1).replace(',', ''))
    tot = re.search(r'([0-9,]+) \([ 0-9.]+%\)  PROGRAM TOTALS', out)
    return d, int(tot.group(1).replace(',', '')) if tot else 0
a, ta = load(big)
b, tb = load(small)
print(f'total: {ta:,} - {tb:,} = {ta - tb:,}  ({(ta - tb) / per:,.0f} per unit)')
rows = sorted(((a.get(k, 0) - b.get(k, 0), k) for k in set(a) | set(b)), reverse=True)
for dv, k in rows[:top]:
    print(f'{dv / per:12,.0f} {100 * dv / max(ta - tb, 1):5.1f}%  {k[:150]}')
