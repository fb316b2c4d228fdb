#!/usr/bin/env python3
"""ComfyUI's script_examples/basic_api_example.py flow, as a comfygo test client.

Fire and forget: POST {"prompt": ...} to /prompt with urllib's default form content type,
no client_id, and ignore the answer (beyond reading it).

usage: basic_api_example.py HOST:PORT PROMPT.json
"""
import json
import sys
import urllib.request

server_address = sys.argv[1]


def queue_prompt(prompt):
    p = {"prompt": prompt}
    data = json.dumps(p).encode("utf-8")
    req = urllib.request.Request("http://{}/prompt".format(server_address), data=data)
    urllib.request.urlopen(req).read()


def main():
    with open(sys.argv[2]) as f:
        prompt = json.load(f)
    queue_prompt(prompt)


if __name__ == "__main__":
    main()
