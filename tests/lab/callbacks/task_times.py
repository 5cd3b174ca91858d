# task_times: where a playbook run's wall time went, task by task (Debian's
# ansible-core has no profile_tasks). A task of a serial play runs once a
# batch, and each run counts. At the end of the run, the slowest tasks and
# the time of each play; with TASK_TIMES_FILE set, every task's time as
# JSON lines appended to that file too.
#   ANSIBLE_CALLBACK_PLUGINS=tests/lab/callbacks ANSIBLE_CALLBACKS_ENABLED=task_times
import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: task_times
type: aggregate
short_description: the wall time of each task and play of a run
description: Prints the slowest tasks and each play's time at the end of a run.
requirements: [enable it in the configuration]
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "task_times"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.tasks = {}      # "play: task" -> seconds, over every batch
        self.plays = {}      # play -> seconds
        self.current = None  # (key, play, start)
        self.play = None

    def _close(self):
        if self.current:
            key, play, start = self.current
            spent = time.monotonic() - start
            self.tasks[key] = self.tasks.get(key, 0.0) + spent
            self.plays[play] = self.plays.get(play, 0.0) + spent
            self.current = None

    def v2_playbook_on_play_start(self, play):
        self._close()
        self.play = play.get_name().strip()

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._close()
        self.current = ("%s: %s" % (self.play, task.get_name().strip()), self.play,
                        time.monotonic())

    v2_playbook_on_handler_task_start = v2_playbook_on_task_start

    def v2_playbook_on_stats(self, stats):
        self._close()
        self._display.display("task_times: the slowest tasks, seconds (all batches)")
        for key, s in sorted(self.tasks.items(), key=lambda kv: -kv[1])[:15]:
            self._display.display("%8.1f  %s" % (s, key))
        self._display.display("task_times: each play, seconds")
        for play, s in self.plays.items():
            self._display.display("%8.1f  %s" % (s, play))
        path = os.environ.get("TASK_TIMES_FILE")
        if path:
            with open(path, "a") as f:
                for key, s in self.tasks.items():
                    f.write(json.dumps({"task": key, "seconds": round(s, 2)}) + "\n")
