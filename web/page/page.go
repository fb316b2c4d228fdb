// Package page is comfygo's web page: the built files of web/page/src (npm run build → dist/),
// embedded in the binary. The server serves FS() at "/".
package page

import (
	"embed"
	"io/fs"
	"testing/fstest"
)

//go:embed all:dist
var dist embed.FS

// notBuilt is served when the binary was built before `npm run build` (make setup) produced dist/.
const notBuilt = `<!doctype html><meta charset="utf-8"><title>comfygo</title>
<body style="font:15px system-ui;background:#202020;color:#ddd;padding:2em">
<h1>comfygo</h1><p>The web page was not built into this binary.</p>
<p>Run <code>make setup</code> (or <code>cd web/page &amp;&amp; npm ci &amp;&amp; npm run build</code>),
then rebuild comfygo. The API (<code>/prompt</code>, <code>/ws</code>, …) works without it.</p></body>`

// FS returns the page's files (index.html, app.js, app.css) rooted at the page directory.
// When the page was not built, it returns a one-file FS whose index.html says how to build it.
func FS() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err == nil {
		if _, err := fs.Stat(sub, "index.html"); err == nil {
			return sub
		}
	}
	return fstest.MapFS{"index.html": &fstest.MapFile{Data: []byte(notBuilt), Mode: 0o444}}
}

// Built reports whether the embedded page is the real build (not the "not built" placeholder).
func Built() bool {
	_, err := fs.Stat(dist, "dist/app.js")
	return err == nil
}
