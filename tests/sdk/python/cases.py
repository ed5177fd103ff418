"""The Python `openai` SDK (pinned by `cargo xtask setup` in target/py-venv) against the edge worker.

Run by tests/sdk/python.test.mjs, one case per process:

    python cases.py <case> <base_url> <api_key> <model>

Each case prints one JSON object on its last line (what the SDK gave, for the Node test to
assert on); an exception from the SDK is printed as {"error": {...}} with its class, status and
message, so that the Node side can tell an SDK error from a crash (exit status 0 either way;
any other exit is a failure of the script itself).
"""

import json
import sys

import openai

MESSAGES = [{"role": "user", "content": "hi"}]


def client(base_url, api_key, **extra):
    return openai.OpenAI(base_url=base_url, api_key=api_key, **extra)


def stream_text(c, model, **extra):
    """Stream a chat answer; return its text, finish reason, chunk count and usage chunks."""
    text = ""
    finish = None
    chunks = 0
    usage = []
    empty_choices = 0
    for chunk in c.chat.completions.create(model=model, messages=MESSAGES, stream=True, **extra):
        chunks += 1
        if chunk.usage is not None:
            usage.append(chunk.usage.model_dump())
        if not chunk.choices:
            empty_choices += 1
            continue
        choice = chunk.choices[0]
        text += choice.delta.content or ""
        finish = choice.finish_reason or finish
    return {"text": text, "finish_reason": finish, "chunks": chunks, "usage": usage, "empty_choices": empty_choices}


def case_stream(base_url, api_key, model):
    return stream_text(client(base_url, api_key, max_retries=0), model)


def case_usage(base_url, api_key, model):
    c = client(base_url, api_key, max_retries=0)
    return {
        "asked": stream_text(c, model, stream_options={"include_usage": True}),
        "not_asked": stream_text(c, model),
    }


def case_json(base_url, api_key, model):
    completion = client(base_url, api_key, max_retries=0).chat.completions.create(model=model, messages=MESSAGES)
    return completion.model_dump(mode="json", exclude_unset=True)


def case_tools(base_url, api_key, model):
    calls = {}
    finish = None
    for chunk in client(base_url, api_key, max_retries=0).chat.completions.create(
        model=model, messages=MESSAGES, stream=True
    ):
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        finish = choice.finish_reason or finish
        for call in choice.delta.tool_calls or []:
            entry = calls.setdefault(call.index, {"id": None, "name": "", "arguments": ""})
            entry["id"] = call.id or entry["id"]
            if call.function is not None:
                entry["name"] += call.function.name or ""
                entry["arguments"] += call.function.arguments or ""
    return {"calls": [calls[i] for i in sorted(calls)], "finish_reason": finish}


def case_cut(base_url, api_key, model):
    """A stream cut after text: the text that arrived, then the SDK's error."""
    text = ""
    try:
        for chunk in client(base_url, api_key, max_retries=0).chat.completions.create(
            model=model, messages=MESSAGES, stream=True
        ):
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
    except openai.APIError as error:
        return {"text": text, "error": {"class": type(error).__name__, "message": str(error.message)}}
    return {"text": text, "error": None}


def case_retries(base_url, api_key, model):
    """With the SDK's default two retries: the worker's x-should-retry: false must stop them."""
    return stream_text(client(base_url, api_key, max_retries=2), model)


CASES = {
    "stream": case_stream,
    "usage": case_usage,
    "json": case_json,
    "tools": case_tools,
    "retries": case_retries,
    "cut": case_cut,
}


def main():
    name, base_url, api_key, model = sys.argv[1:5]
    try:
        result = CASES[name](base_url, api_key, model)
    except openai.APIError as error:
        result = {
            "error": {
                "class": type(error).__name__,
                "status": getattr(error, "status_code", None),
                "message": str(error.message),
                "should_retry": getattr(getattr(error, "response", None), "headers", {}).get("x-should-retry"),
            },
            "version": openai.__version__,
        }
    print(json.dumps({"version": openai.__version__, **result}))


if __name__ == "__main__":
    main()
