#!/usr/bin/env python3
"""ComfyUI's script_examples/websockets_api_example_ws_images.py flow, as a comfygo test client.

The prompt ends in a SaveImageWebsocket node with id "save_image_websocket_node". Queue it with
a client_id at /api/prompt (the server picks the prompt_id), then read the websocket: remember the node named
by each `executing` message of this prompt and, while that node is the SaveImageWebsocket node,
take every binary frame from offset 8 (event type 1, image format 2) as a PNG. Stop at the
`executing` message with node null.

usage: websockets_api_example_ws_images.py HOST:PORT PROMPT.json OUTDIR
Prints one line per received image: "<node_id> <index> <bytes>"; writes OUTDIR/ws_<index>.png.
"""
import json
import os
import sys
import urllib.request
import uuid

import websocket  # Debian: python3-websocket (websocket-client)

server_address = sys.argv[1]
client_id = str(uuid.uuid4())


def queue_prompt(prompt):
    p = {"prompt": prompt, "client_id": client_id}
    data = json.dumps(p).encode("utf-8")
    req = urllib.request.Request("http://{}/api/prompt".format(server_address), data=data)
    return json.loads(urllib.request.urlopen(req).read())


def get_images(ws, prompt):
    prompt_id = queue_prompt(prompt)["prompt_id"]
    output_images = {}
    current_node = ""
    while True:
        out = ws.recv()
        if isinstance(out, str):
            message = json.loads(out)
            if message["type"] == "executing":
                data = message["data"]
                if data["prompt_id"] == prompt_id:
                    if data["node"] is None:
                        break  # Execution is done
                    current_node = data["node"]
        else:
            if current_node == "save_image_websocket_node":
                images_output = output_images.get(current_node, [])
                images_output.append(out[8:])
                output_images[current_node] = images_output
    return output_images


def main():
    with open(sys.argv[2]) as f:
        prompt = json.load(f)
    outdir = sys.argv[3]
    ws = websocket.WebSocket()
    ws.connect("ws://{}/ws?clientId={}".format(server_address, client_id))
    images = get_images(ws, prompt)
    ws.close()
    for node_id in images:
        for i, image_data in enumerate(images[node_id]):
            with open(os.path.join(outdir, "ws_{}.png".format(i)), "wb") as f:
                f.write(image_data)
            print(node_id, i, len(image_data))


if __name__ == "__main__":
    main()
