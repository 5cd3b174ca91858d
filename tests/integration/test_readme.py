"""The README's "Try it" run as a reader would: its curl command through
bash, against this test cluster (the local cluster of `make run` with every
port shifted: the command's ports and key file are replaced by this
cluster's), and what it prints compared with what the README shows: the
answer's fields, the request the receiver gets, and the delivery log
line's fields and values."""
import json
import os
import re
import subprocess

from conftest import ROOT, delivery_log_lines, logfmt, of_mark


def try_it_blocks():
    """The fenced blocks of the README's "Try it" section, in order."""
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    section = text.split("\n## Try it\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(\w*)\n(.*?)```", section, re.S)


def test_the_readmes_try_it_prints_what_the_readme_shows(cluster, receiver, mark):
    blocks = try_it_blocks()
    kinds = [k for k, _ in blocks]
    assert kinds[:2] == ["sh", "json"] and len(blocks) >= 4, kinds
    command, answer, received, log_line = (b for _, b in blocks[:4])
    # The local cluster's addresses and key file, as this cluster has them.
    here = command.replace("http://127.0.0.1:8080", cluster.endpoint)
    here = here.replace("http://127.0.0.1:8090", receiver.url + mark)
    here = here.replace("run/secrets/client.key", cluster.path("secrets", "client.key"))
    assert here != command and "8090" not in here.replace(receiver.url, "")
    out = subprocess.run(["bash", "-c", here], capture_output=True, text=True, timeout=30,
                         cwd=ROOT)
    assert out.returncode == 0, out.stderr
    got, shown = json.loads(out.stdout), json.loads(answer)
    assert sorted(got) == sorted(shown), (got, shown)
    assert (got["redis_is_connected"], got["accepted"]) == (shown["redis_is_connected"], 1)
    assert len(got["ids"]) == 1 and got["ids"][0].startswith(got["request_id"] + "-")

    # What the receiver gets: the request line and the id header.
    request_line, id_header = received.strip().split("\n")
    method, target = request_line.split(" ", 1)
    assert receiver.wait_for(lambda rs: of_mark(rs, mark), 15)
    req = of_mark(receiver.requests, mark)[0]
    assert (req["method"], req["path"]) == (method, mark + target)
    assert id_header.split(": ")[0] == "X-Postback-Id" and req["id"] == got["ids"][0]

    # The delivery log line: the same fields in the same order, the same
    # values but for the time, the agent, the id and the timings.
    shown_fields = logfmt(log_line.strip())
    lines = delivery_log_lines(cluster, got["ids"][0])
    assert len(lines) == 1, lines
    fields = logfmt(lines[0])
    assert [k for k, _ in fields] == [k for k, _ in shown_fields]
    moving = {"ts", "agent", "id", "age_ms", "time_ms"}
    want = {k: v.replace("http://127.0.0.1:8090", receiver.url + mark)
            for k, v in shown_fields if k not in moving}
    want["dest"] = receiver.url
    assert {k: v for k, v in fields if k not in moving} == want
