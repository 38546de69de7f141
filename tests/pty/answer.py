#!/usr/bin/env python3
"""Runs a command in a pseudo-terminal, as at a person's keyboard, and answers one question.

Usage: answer.py QUESTION ANSWER CMD [ARGS..]: waits until the command writes QUESTION, types
ANSWER and Enter, then prints everything the command wrote and exits with its exit code
(3 when the question never came within 60 s). An empty QUESTION answers nothing.
"""
import os
import pty
import select
import sys
import time

question, answer, cmd = sys.argv[1].encode(), sys.argv[2], sys.argv[3:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(cmd[0], cmd)

seen = b""
asked = not question
end = time.time() + 60
while True:
    if not asked and question in seen:
        os.write(fd, (answer + "\r").encode())
        asked = True
    if not asked and time.time() > end:
        os.kill(pid, 9)
        sys.stdout.write(seen.decode(errors="replace"))
        sys.exit(3)
    ready, _, _ = select.select([fd], [], [], 0.2)
    if ready:
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        seen += data
_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
