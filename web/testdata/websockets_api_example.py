#!/usr/bin/env python3
"""ComfyUI's script_examples/websockets_api_example.py flow, as a comfygo test client.

Queue a prompt over HTTP with a client-chosen prompt_id, wait on /ws for the
`executing` message with node null for that prompt, then fetch /history/{id}
and download every output image with /view.

usage: websockets_api_example.py HOST:PORT PROMPT.json OUTDIR
Prints one line per saved image: "<node_id> <filename> <bytes>".
"""
import json
import os
import sys
import urllib.parse
import urllib.request
import uuid

import websocket  # Debian: python3-websocket (websocket-client)

server_address = sys.argv[1]
client_id = str(uuid.uuid4())


def queue_prompt(prompt, prompt_id):
    p = {"prompt": prompt, "client_id": client_id, "prompt_id": prompt_id}
    data = json.dumps(p).encode("utf-8")
    req = urllib.request.Request("http://{}/prompt".format(server_address), data=data)
    urllib.request.urlopen(req).read()


def get_image(filename, subfolder, folder_type):
    data = {"filename": filename, "subfolder": subfolder, "type": folder_type}
    url_values = urllib.parse.urlencode(data)
    with urllib.request.urlopen("http://{}/view?{}".format(server_address, url_values)) as response:
        return response.read()


def get_history(prompt_id):
    with urllib.request.urlopen("http://{}/history/{}".format(server_address, prompt_id)) as response:
        return json.loads(response.read())


def get_images(ws, prompt):
    prompt_id = str(uuid.uuid4())
    queue_prompt(prompt, prompt_id)
    output_images = {}
    while True:
        out = ws.recv()
        if isinstance(out, str):
            message = json.loads(out)
            if message["type"] == "executing":
                data = message["data"]
                if data["node"] is None and data["prompt_id"] == prompt_id:
                    break  # Execution is done
        else:
            continue  # previews are binary data

    history = get_history(prompt_id)[prompt_id]
    for node_id in history["outputs"]:
        node_output = history["outputs"][node_id]
        images_output = []
        if "images" in node_output:
            for image in node_output["images"]:
                image_data = get_image(image["filename"], image["subfolder"], image["type"])
                images_output.append((image["filename"], image_data))
        output_images[node_id] = images_output
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
        for filename, image_data in images[node_id]:
            with open(os.path.join(outdir, filename), "wb") as f:
                f.write(image_data)
            print(node_id, filename, len(image_data))


if __name__ == "__main__":
    main()
