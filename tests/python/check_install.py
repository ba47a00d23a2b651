"""The package installs without pip or network: `cmake --install <build>
--component python` into a staging directory (DESTDIR), then a fresh
interpreter imports tulip from there (not from the build tree) and runs a
coroutine on its loop.

Usage: python3 check_install.py <build directory>
"""

import os
import subprocess
import sys
import tempfile


def main(build: str) -> int:
    with tempfile.TemporaryDirectory() as stage:
        env = dict(os.environ, DESTDIR=stage)
        env.pop('PYTHONPATH', None)
        subprocess.run(['cmake', '--install', build, '--component', 'python'], env=env,
                       check=True, stdout=subprocess.DEVNULL)
        # os.walk, not glob('**'): glob skips hidden directories, and a
        # site-packages may well live under one (a per-user interpreter).
        found = [os.path.join(root, '__init__.py') for root, _, files in os.walk(stage)
                 if os.path.basename(root) == 'tulip' and '__init__.py' in files]
        if len(found) != 1:
            print(f'check_install: expected one installed tulip package, found {found}')
            return 1
        site = os.path.dirname(os.path.dirname(found[0]))
        code = ('import asyncio, tulip\n'
                'assert tulip.__file__.startswith(%r), tulip.__file__\n'
                'print(tulip.run(asyncio.sleep(0, "installed")))\n' % site)
        result = subprocess.run([sys.executable, '-c', code], env=dict(env, PYTHONPATH=site),
                                capture_output=True, text=True, cwd=stage)
        if result.stdout != 'installed\n':
            print(f'check_install: the installed package did not run:\n{result.stderr}')
            return 1
    print('check_install: installed and imported')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1]))
