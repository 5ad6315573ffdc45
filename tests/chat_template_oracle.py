#!/usr/bin/env python3
"""Reference renderer for the chat-template property test (tests/unit/chat_template_test.cc).

Reads JSON lines {"template": str, "context": obj} on stdin and writes one JSON line per input:
{"rendered": str} or {"error": "<ExceptionType>: <message>"}. Jinja2 is configured the way Hugging Face
transformers configures it (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols,
transformers' tojson, raise_exception, strftime_now)."""
import json
import sys
from datetime import datetime

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(fmt):
    return datetime.now().strftime(fmt)


def main():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    cache = {}
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        try:
            src = req["template"]
            if src not in cache:
                cache[src] = env.from_string(src)
            out = {"rendered": cache[src].render(**req["context"])}
        except Exception as e:  # noqa: BLE001 - every failure is reported to the caller
            out = {"error": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
