// Package browser holds the console's end-to-end tests: they build the console binary, start
// `console serve` on an embedded PostgreSQL in a temporary directory, and drive its pages in a
// headless Chromium through chromedp, with JavaScript on (htmx) and off (plain links and forms).
//
// The package has no code of its own besides the tests. Chromium must be installed
// ($CHROMIUM, /usr/bin/chromium or `chromium` on PATH; `make test` installs it): without it the
// tests fail, they never skip. Set SCREENSHOT_DIR to a directory to get PNG screenshots of the main
// pages written there.
package browser
