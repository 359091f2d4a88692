// Package static embeds the console's assets (pinned htmx, CSS, a small script) and serves them
// under content-hashed URLs with long caching, so a new release never meets a stale asset.
package static

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
)

//go:embed htmx.min.js app.css app.js favicon.svg
var files embed.FS

// Prefix is the URL path under which assets are served.
const Prefix = "/static/"

// Assets maps asset names to hashed URLs and serves them.
type Assets struct {
	urls   map[string]string // "app.css" -> "/static/app.3f2a9c1d.css"
	byPath map[string]asset  // "app.3f2a9c1d.css" -> content
}

type asset struct {
	body        []byte
	contentType string
	etag        string
}

// New hashes the embedded files.
func New() *Assets {
	a := &Assets{urls: map[string]string{}, byPath: map[string]asset{}}
	entries, _ := fs.ReadDir(files, ".")
	for _, e := range entries {
		body, _ := files.ReadFile(e.Name())
		sum := sha256.Sum256(body)
		h := hex.EncodeToString(sum[:])[:12]
		ext := path.Ext(e.Name())
		hashed := strings.TrimSuffix(e.Name(), ext) + "." + h + ext
		a.urls[e.Name()] = Prefix + hashed
		ct := mime.TypeByExtension(ext)
		if ext == ".js" {
			ct = "text/javascript; charset=utf-8"
		}
		a.byPath[hashed] = asset{body: body, contentType: ct, etag: `"` + h + `"`}
	}
	return a
}

// URL returns the hashed URL of an asset by its file name ("app.css"); an unknown name panics,
// since it is a programming error caught by any test that renders a page.
func (a *Assets) URL(name string) string {
	u, ok := a.urls[name]
	if !ok {
		panic("static: no asset " + name)
	}
	return u
}

// ServeHTTP serves a hashed asset path (below Prefix) with a year of immutable caching.
func (a *Assets) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f, ok := a.byPath[strings.TrimPrefix(r.URL.Path, Prefix)]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.contentType)
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("ETag", f.etag)
	if r.Header.Get("If-None-Match") == f.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Write(f.body)
}

// File serves the asset name ("favicon.svg") at a fixed path, such as /favicon.ico for clients
// that ask there without reading the page's <link rel="icon">; cached for a day, not forever,
// since the path does not change with the content.
func (a *Assets) File(name string) http.Handler {
	f := a.byPath[strings.TrimPrefix(a.URL(name), Prefix)]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", f.contentType)
		w.Header().Set("Cache-Control", "public, max-age=86400")
		w.Write(f.body)
	})
}
