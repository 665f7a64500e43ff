// Harbor STAND-IN for the lab: NOT Harbor. One static binary that keeps the
// parts of Harbor's contract the compose path relies on:
//
//	standin prepare [--with-trivy]     reads /input/harbor.yml (as Harbor's prepare image does),
//	                                   checks _version, copies the certificate, writes docker-compose.yml
//	standin migrate -i IN -o OUT -t T  rewrites _version (host paths under /hostfs, as Harbor's migrate)
//	standin proxy CONFIG               HTTPS with the configured certificate: /api/v2.0/health,
//	                                   /api/v2.0/users/current, PUT /api/v2.0/users/<id>/password,
//	                                   and /v2/ proxied to a real Distribution registry
//	standin idle                       a service that only waits for SIGTERM (core, jobservice, trivy...)
//
// Health can be forced unhealthy: each line of <data_volume>/standin/unhealthy names a component.
// Standard library only; built by test/lab/standin/build.ts with CGO_ENABLED=0.
package main

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

var schemaVersion = "unset" // set with -ldflags "-X main.schemaVersion=2.15.0"
var installerVersion = "unset"

func main() {
	if len(os.Args) < 2 {
		fail("usage: standin prepare|migrate|proxy|idle")
	}
	switch os.Args[1] {
	case "prepare":
		prepare(os.Args[2:])
	case "migrate":
		migrate(os.Args[2:])
	case "proxy":
		proxy(os.Args[2])
	case "idle":
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
		<-ch
	default:
		fail("unknown command " + os.Args[1])
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "standin: "+msg)
	os.Exit(1)
}

// ---- a small YAML reader: block maps, block lists of scalars, quoted scalars, [] ----

type line struct {
	indent int
	text   string
}

func parseYAML(src string) map[string]interface{} {
	var lines []line
	for _, raw := range strings.Split(src, "\n") {
		t := strings.TrimRight(raw, " \r")
		trimmed := strings.TrimLeft(t, " ")
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		lines = append(lines, line{len(t) - len(trimmed), trimmed})
	}
	pos := 0
	v := parseBlock(lines, &pos, 0)
	m, _ := v.(map[string]interface{})
	return m
}

func parseBlock(ls []line, pos *int, indent int) interface{} {
	if *pos < len(ls) && strings.HasPrefix(ls[*pos].text, "- ") {
		var list []interface{}
		for *pos < len(ls) && ls[*pos].indent == indent && strings.HasPrefix(ls[*pos].text, "- ") {
			list = append(list, scalar(strings.TrimPrefix(ls[*pos].text, "- ")))
			*pos++
		}
		return list
	}
	m := map[string]interface{}{}
	for *pos < len(ls) && ls[*pos].indent == indent {
		l := ls[*pos]
		i := strings.Index(l.text, ":")
		if i < 0 {
			fail("harbor.yml: cannot read line: " + l.text)
		}
		key, rest := l.text[:i], strings.TrimSpace(l.text[i+1:])
		*pos++
		if rest == "" {
			if *pos < len(ls) && ls[*pos].indent > indent {
				m[key] = parseBlock(ls, pos, ls[*pos].indent)
			} else if *pos < len(ls) && ls[*pos].indent == indent && strings.HasPrefix(ls[*pos].text, "- ") {
				m[key] = parseBlock(ls, pos, indent)
			} else {
				m[key] = nil
			}
		} else {
			m[key] = scalar(rest)
		}
	}
	return m
}

func scalar(s string) interface{} {
	switch {
	case s == "[]":
		return []interface{}{}
	case strings.HasPrefix(s, "'"):
		return strings.ReplaceAll(s[1:len(s)-1], "''", "'")
	case strings.HasPrefix(s, "\""):
		var out string
		if err := json.Unmarshal([]byte(s), &out); err != nil {
			fail("harbor.yml: bad quoted string " + s)
		}
		return out
	case s == "true":
		return true
	case s == "false":
		return false
	}
	if n, err := strconv.Atoi(s); err == nil {
		return n
	}
	return s
}

func get(m map[string]interface{}, path string) interface{} {
	var cur interface{} = m
	for _, k := range strings.Split(path, ".") {
		mm, ok := cur.(map[string]interface{})
		if !ok {
			return nil
		}
		cur = mm[k]
	}
	return cur
}

func str(m map[string]interface{}, path string) string {
	v := get(m, path)
	if v == nil {
		fail("harbor.yml: " + path + " is required")
	}
	return fmt.Sprint(v)
}

// ---- prepare ----

func copyFile(src, dst string, mode os.FileMode) {
	b, err := os.ReadFile(src)
	if err != nil {
		fail("prepare: " + err.Error())
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		fail(err.Error())
	}
	if err := os.WriteFile(dst, b, mode); err != nil {
		fail(err.Error())
	}
}

func prepare(args []string) {
	withTrivy := false
	for _, a := range args {
		if a == "--with-trivy" {
			withTrivy = true
		} else {
			fail("prepare: unknown flag " + a)
		}
	}
	src, err := os.ReadFile("/input/harbor.yml")
	if err != nil {
		fail("prepare: /input/harbor.yml: " + err.Error())
	}
	cfg := parseYAML(string(src))
	if v := str(cfg, "_version"); v != schemaVersion {
		fail(fmt.Sprintf("prepare: harbor.yml _version is %s but this installer (stand-in %s) reads %s: run migrate first", v, installerVersion, schemaVersion))
	}
	hostname := str(cfg, "hostname")
	data := str(cfg, "data_volume")
	cert, key := str(cfg, "https.certificate"), str(cfg, "https.private_key")
	httpsPort, httpPort := str(cfg, "https.port"), "80"
	if p := get(cfg, "http.port"); p != nil {
		httpPort = fmt.Sprint(p)
	}
	for _, p := range []string{"harbor_admin_password", "database.password"} {
		if str(cfg, p) == "" {
			fail("prepare: " + p + " is empty")
		}
	}
	host := func(p string) string { return filepath.Join("/hostfs", p) }
	copyFile(host(cert), host(filepath.Join(data, "secret/cert/server.crt")), 0o644)
	copyFile(host(key), host(filepath.Join(data, "secret/cert/server.key")), 0o600)
	for _, d := range []string{"registry", "database", "standin"} {
		if err := os.MkdirAll(host(filepath.Join(data, d)), 0o755); err != nil {
			fail(err.Error())
		}
	}
	// The stand-in's "database": a marker the backup must carry.
	pg := host(filepath.Join(data, "database/PG_VERSION"))
	if _, err := os.Stat(pg); err != nil {
		os.WriteFile(pg, []byte("standin\n"), 0o600)
	}
	adm := host(filepath.Join(data, "standin/admin-password"))
	if _, err := os.Stat(adm); err != nil { // harbor_admin_password applies at the first start only
		os.WriteFile(adm, []byte(str(cfg, "harbor_admin_password")), 0o600)
	}
	conf := "/compose_location/common/config"
	reg := "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /storage\n  delete:\n    enabled: true\nhttp:\n  addr: :5000\n  relativeurls: true\n"
	os.MkdirAll(conf+"/registry", 0o755)
	os.WriteFile(conf+"/registry/config.yml", []byte(reg), 0o644)
	pj, _ := json.Marshal(map[string]interface{}{"hostname": hostname, "withTrivy": withTrivy, "version": installerVersion})
	os.MkdirAll(conf+"/proxy", 0o755)
	os.WriteFile(conf+"/proxy/proxy.json", pj, 0o644)

	workdir := os.Getenv("STANDIN_WORKDIR")
	image := "casd-standin/harbor:v" + installerVersion
	idle := func(name string) map[string]interface{} {
		return map[string]interface{}{"image": image, "container_name": "standin-" + name, "entrypoint": []string{"/standin", "idle"}, "restart": "always"}
	}
	services := map[string]interface{}{
		"core":       idle("core"),
		"jobservice": idle("jobservice"),
		"registry": map[string]interface{}{
			"image": image, "container_name": "standin-registry", "restart": "always",
			"entrypoint": []string{"/usr/bin/docker-registry", "serve", "/etc/registry/config.yml"},
			"volumes":    []string{data + "/registry:/storage", workdir + "/common/config/registry/config.yml:/etc/registry/config.yml:ro"},
		},
		"proxy": map[string]interface{}{
			"image": image, "container_name": "standin-nginx", "restart": "always",
			"entrypoint": []string{"/standin", "proxy", "/etc/standin/proxy.json"},
			"ports":      []string{httpsPort + ":8443", httpPort + ":8080"},
			"volumes":    []string{data + "/secret/cert:/etc/cert:ro", data + "/standin:/standin-state", workdir + "/common/config/proxy/proxy.json:/etc/standin/proxy.json:ro"},
			"depends_on": []string{"registry", "core"},
		},
	}
	if withTrivy {
		services["trivy-adapter"] = idle("trivy-adapter")
	}
	dc, _ := json.MarshalIndent(map[string]interface{}{"version": "2.3", "services": services}, "", "  ")
	if err := os.WriteFile("/compose_location/docker-compose.yml", dc, 0o644); err != nil {
		fail(err.Error())
	}
	fmt.Println("Generated configuration file: /compose_location/docker-compose.yml (Harbor stand-in)")
}

// ---- migrate ----

func migrate(args []string) {
	var in, out, target string
	for i := 0; i+1 < len(args); i += 2 {
		switch args[i] {
		case "-i":
			in = args[i+1]
		case "-o":
			out = args[i+1]
		case "-t":
			target = args[i+1]
		}
	}
	if out == "" {
		out = in
	}
	src, err := os.ReadFile(filepath.Join("/hostfs", in))
	if err != nil {
		fail("migrate: " + err.Error())
	}
	cfg := parseYAML(string(src))
	from := str(cfg, "_version")
	if target != schemaVersion {
		fail("migrate: target version " + target + " not supported")
	}
	var b strings.Builder
	for _, l := range strings.Split(string(src), "\n") {
		if strings.HasPrefix(l, "_version:") {
			l = "_version: " + target
		}
		b.WriteString(l + "\n")
	}
	if err := os.WriteFile(filepath.Join("/hostfs", out), []byte(strings.TrimSuffix(b.String(), "\n")), 0o600); err != nil {
		fail(err.Error())
	}
	fmt.Printf("migrating to version %s (stand-in, from %s)\nWritten new values to %s\n", target, from, out)
}

// ---- proxy ----

func proxy(configPath string) {
	var cfg struct {
		Hostname  string `json:"hostname"`
		WithTrivy bool   `json:"withTrivy"`
	}
	b, err := os.ReadFile(configPath)
	if err != nil {
		fail(err.Error())
	}
	json.Unmarshal(b, &cfg)
	registry, _ := url.Parse("http://registry:5000")
	rp := httputil.NewSingleHostReverseProxy(registry)
	var mu sync.Mutex
	components := []string{"core", "database", "jobservice", "portal", "redis", "registry", "registryctl"}
	if cfg.WithTrivy {
		components = append(components, "trivy")
	}
	sort.Strings(components)
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v2.0/health", func(w http.ResponseWriter, r *http.Request) {
		bad := map[string]bool{}
		if f, err := os.Open("/standin-state/unhealthy"); err == nil {
			s := bufio.NewScanner(f)
			for s.Scan() {
				if t := strings.TrimSpace(s.Text()); t != "" {
					bad[t] = true
				}
			}
			f.Close()
		}
		c := http.Client{Timeout: 3 * time.Second}
		if resp, err := c.Get("http://registry:5000/v2/"); err != nil || resp.StatusCode != 200 {
			bad["registry"] = true
		} else {
			resp.Body.Close()
		}
		type comp struct {
			Name   string `json:"name"`
			Status string `json:"status"`
			Error  string `json:"error,omitempty"`
		}
		out := struct {
			Status     string `json:"status"`
			Components []comp `json:"components"`
		}{Status: "healthy"}
		for _, n := range components {
			if bad[n] {
				out.Status = "unhealthy"
				out.Components = append(out.Components, comp{n, "unhealthy", "stand-in: marked unhealthy"})
			} else {
				out.Components = append(out.Components, comp{Name: n, Status: "healthy"})
			}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(out)
	})
	auth := func(r *http.Request) bool {
		u, p, ok := r.BasicAuth()
		cur, _ := os.ReadFile("/standin-state/admin-password")
		return ok && u == "admin" && p == string(cur)
	}
	mux.HandleFunc("/api/v2.0/users/current", func(w http.ResponseWriter, r *http.Request) {
		if !auth(r) {
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, 401)
			return
		}
		fmt.Fprint(w, `{"user_id":1,"username":"admin","sysadmin_flag":true}`)
	})
	mux.HandleFunc("/api/v2.0/users/1/password", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.Method != http.MethodPut || !auth(r) {
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, 401)
			return
		}
		var body struct {
			Old string `json:"old_password"`
			New string `json:"new_password"`
		}
		raw, _ := io.ReadAll(r.Body)
		cur, _ := os.ReadFile("/standin-state/admin-password")
		if json.Unmarshal(raw, &body) != nil || body.Old != string(cur) || body.New == "" {
			http.Error(w, `{"errors":[{"code":"BAD_REQUEST"}]}`, 400)
			return
		}
		os.WriteFile("/standin-state/admin-password", []byte(body.New), 0o600)
		w.WriteHeader(200)
	})
	mux.Handle("/v2/", rp)
	go func() {
		redirect := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://"+cfg.Hostname+r.URL.RequestURI(), http.StatusMovedPermanently)
		})
		http.ListenAndServe(":8080", redirect)
	}()
	srv := &http.Server{Addr: ":8443", Handler: mux, TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12}}
	if err := srv.ListenAndServeTLS("/etc/cert/server.crt", "/etc/cert/server.key"); err != nil {
		fail(err.Error())
	}
}
