#!/usr/bin/env python3
"""Drives `stand repl --sim` through a pseudo-terminal like a person at a keyboard.

Usage: pty_session.py STAND_EXE  (STAND_SIM_STATE in the environment). Prints `pty session: OK`.
"""
import os
import pty
import select
import sys
import time

exe = sys.argv[1]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(exe, [exe, "repl", "--sim"])

seen = b""


def expect(pattern, timeout=30):
    global seen
    end = time.time() + timeout
    while time.time() < end:
        if pattern in seen:
            seen = seen[seen.index(pattern) + len(pattern):]
            return
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                data = os.read(fd, 65536)
            except OSError:
                break
            seen += data
    sys.exit("timed out waiting for %r; last output: %r" % (pattern, seen[-800:]))


def send(text):
    os.write(fd, text.encode())


expect(b"stand> ")
# Completion of a node name: "pv" completes to the common prefix "pve".
send('let here = "pv\t')
time.sleep(0.3)
send('2"; here + "!"\r')
expect(b'"pve2!"')
time.sleep(0.3)
# A table.
send("nodes()\r")
expect(b"maxcpu")
expect(b"pve3")
time.sleep(0.3)
# A multi-line block.
send("for t in templates() {\r")
time.sleep(0.2)
send("  print(`tpl ${t.vmid}`);\r")
time.sleep(0.2)
send("}\r")
expect(b"tpl 103")
send(":quit\r")
os.waitpid(pid, 0)
print("pty session: OK")
