package deploy

import (
	"bytes"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The Traefik v3 files, decoded strictly: a key that is not one of Traefik's (as spelled in
// its dynamic and static configuration) fails the test. Traefik is not packaged for Debian 12,
// so it is not run.
type traefikDynamic struct {
	HTTP struct {
		Routers map[string]struct {
			EntryPoints []string `yaml:"entryPoints"`
			Rule        string   `yaml:"rule"`
			Middlewares []string `yaml:"middlewares"`
			Service     string   `yaml:"service"`
		} `yaml:"routers"`
		Middlewares map[string]struct {
			ForwardAuth *struct {
				Address                  string   `yaml:"address"`
				TrustForwardHeader       bool     `yaml:"trustForwardHeader"`
				AuthRequestHeaders       []string `yaml:"authRequestHeaders"`
				AuthResponseHeaders      []string `yaml:"authResponseHeaders"`
				AuthResponseHeadersRegex string   `yaml:"authResponseHeadersRegex"`
			} `yaml:"forwardAuth"`
		} `yaml:"middlewares"`
		Services map[string]struct {
			LoadBalancer struct {
				ServersTransport string `yaml:"serversTransport"`
				Servers          []struct {
					URL string `yaml:"url"`
				} `yaml:"servers"`
			} `yaml:"loadBalancer"`
		} `yaml:"services"`
		ServersTransports map[string]struct {
			ForwardingTimeouts struct {
				DialTimeout           string `yaml:"dialTimeout"`
				ResponseHeaderTimeout string `yaml:"responseHeaderTimeout"`
				IdleConnTimeout       string `yaml:"idleConnTimeout"`
			} `yaml:"forwardingTimeouts"`
		} `yaml:"serversTransports"`
	} `yaml:"http"`
}

type traefikStatic struct {
	EntryPoints map[string]struct {
		Address   string `yaml:"address"`
		Transport struct {
			RespondingTimeouts struct {
				ReadTimeout  string `yaml:"readTimeout"`
				WriteTimeout string `yaml:"writeTimeout"`
				IdleTimeout  string `yaml:"idleTimeout"`
			} `yaml:"respondingTimeouts"`
		} `yaml:"transport"`
	} `yaml:"entryPoints"`
	Providers struct {
		File struct {
			Filename string `yaml:"filename"`
		} `yaml:"file"`
	} `yaml:"providers"`
}

func decodeStrict(t *testing.T, file string, v any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

func TestTraefikConfig(t *testing.T) {
	var dyn traefikDynamic
	decodeStrict(t, "traefik/console.yml", &dyn)
	var static traefikStatic
	decodeStrict(t, "traefik/traefik.yml", &static)

	router, ok := dyn.HTTP.Routers["app"]
	if !ok || router.Service != "app" || len(router.Middlewares) != 1 {
		t.Fatalf("router app: %+v", router)
	}
	mw, ok := dyn.HTTP.Middlewares[router.Middlewares[0]]
	if !ok || mw.ForwardAuth == nil {
		t.Fatalf("the router's middleware %q is no forwardAuth", router.Middlewares[0])
	}
	fa := mw.ForwardAuth
	if u, err := url.Parse(fa.Address); err != nil || u.Path != "/auth/verify" {
		t.Errorf("forwardAuth address %q, want the console's /auth/verify", fa.Address)
	}
	if fa.TrustForwardHeader {
		t.Error("trustForwardHeader: the client's X-Forwarded-* would reach the console")
	}
	for _, h := range []string{"Cookie", "X-Cockroach-API-Session", "User-Agent"} {
		if !slices.Contains(fa.AuthRequestHeaders, h) {
			t.Errorf("authRequestHeaders lacks %s", h)
		}
	}
	for _, h := range []string{"X-Auth-User", "X-Auth-Session-Id"} {
		if !slices.Contains(fa.AuthResponseHeaders, h) {
			t.Errorf("authResponseHeaders lacks %s", h)
		}
	}
	// Traefik strips every request header the regex matches before copying the answer's.
	re, err := regexp.Compile(fa.AuthResponseHeadersRegex)
	if err != nil {
		t.Fatalf("authResponseHeadersRegex: %v", err)
	}
	for h, want := range map[string]bool{"X-Auth-User": true, "X-Auth-Session-Id": true, "X-Auth-Role": true, "X-Authority": false, "Cookie": false} {
		if re.MatchString(h) != want {
			t.Errorf("authResponseHeadersRegex %q matches %s: %v, want %v", fa.AuthResponseHeadersRegex, h, !want, want)
		}
	}
	svc, ok := dyn.HTTP.Services[router.Service]
	if !ok || len(svc.LoadBalancer.Servers) != 1 {
		t.Fatalf("service %q: %+v", router.Service, svc)
	}
	tr, ok := dyn.HTTP.ServersTransports[svc.LoadBalancer.ServersTransport]
	if !ok || tr.ForwardingTimeouts.DialTimeout == "" || tr.ForwardingTimeouts.ResponseHeaderTimeout == "" {
		t.Errorf("service %q has no forwarding timeouts", router.Service)
	}
	for _, ep := range router.EntryPoints {
		e, ok := static.EntryPoints[ep]
		if !ok {
			t.Errorf("router's entry point %q is not in traefik.yml", ep)
			continue
		}
		rt := e.Transport.RespondingTimeouts
		if rt.ReadTimeout == "" || rt.WriteTimeout == "" || rt.IdleTimeout == "" {
			t.Errorf("entry point %q lacks responding timeouts: %+v", ep, rt)
		}
	}
	if !strings.HasSuffix(static.Providers.File.Filename, "/console.yml") {
		t.Errorf("the file provider loads %q, not console.yml", static.Providers.File.Filename)
	}
}
