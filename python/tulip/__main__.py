"""python3 -m tulip SCRIPT [ARGS...]: runs SCRIPT with tulip as asyncio's loop.

The script runs as `python3 SCRIPT ARGS...` would run it (as __main__, with
sys.argv and sys.path[0] set to match); asyncio.run() and
asyncio.new_event_loop() in it make tulip loops.
"""

import os
import runpy
import sys

import tulip


def main(argv):
    if len(argv) < 1 or argv[0] in ('-h', '--help'):
        print('usage: python3 -m tulip SCRIPT [ARGS...]', file=sys.stderr)
        return 0 if argv and argv[0] in ('-h', '--help') else 2
    script = argv[0]
    if not os.path.isfile(script):
        print(f'python3 -m tulip: cannot open {script!r}: no such file', file=sys.stderr)
        return 2
    sys.argv = list(argv)
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    tulip.install()
    runpy.run_path(script, run_name='__main__')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
