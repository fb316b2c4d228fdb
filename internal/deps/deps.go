package deps

import (
	_ "github.com/dominikbraun/graph"
	_ "github.com/goccy/go-json"
	_ "github.com/gorilla/websocket"
	_ "github.com/yalue/onnxruntime_go"
	_ "go.etcd.io/bbolt"
	_ "gopkg.in/yaml.v3"
)
