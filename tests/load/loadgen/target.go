package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// CheckLoopbackURL parses raw and refuses anything that is not plain HTTP to
// a loopback address (127.0.0.0/8 or ::1). Host names must resolve only to
// loopback addresses.
func CheckLoopbackURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("bad url %q: %v", raw, err)
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("bad url %q: only http:// is supported", raw)
	}
	host := u.Hostname()
	if host == "" {
		return nil, fmt.Errorf("bad url %q: no host", raw)
	}
	if ip := net.ParseIP(host); ip != nil {
		if !ip.IsLoopback() {
			return nil, fmt.Errorf("refusing non-loopback target %s (only 127.0.0.0/8 and ::1 are allowed)", host)
		}
		return u, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("cannot resolve %q: %v", host, err)
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("%q resolves to nothing", host)
	}
	for _, a := range ips {
		if !a.IP.IsLoopback() {
			return nil, fmt.Errorf("refusing target %q: it resolves to non-loopback %s", host, a.IP)
		}
	}
	return u, nil
}

// loopbackOnlyControl is a net.Dialer Control hook: a second line of defence
// that refuses to connect to any non-loopback address whatever the resolver
// says at dial time.
func loopbackOnlyControl(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("refusing to dial non-loopback address %s", address)
	}
	return nil
}

// NewClient returns a keep-alive HTTP/1.1 client with a pool of up to conns
// connections to the single target, no proxy, no redirects and no
// compression.
func NewClient(conns int, timeout time.Duration) *http.Client {
	if conns < 1 {
		conns = 1
	}
	dialer := &net.Dialer{
		Timeout:   3 * time.Second,
		KeepAlive: 30 * time.Second,
		Control:   loopbackOnlyControl,
	}
	tr := &http.Transport{
		Proxy:                 nil, // never honour http_proxy: target is local
		DialContext:           dialer.DialContext,
		MaxIdleConns:          conns,
		MaxIdleConnsPerHost:   conns,
		MaxConnsPerHost:       conns,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: timeout,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// NewDoer builds the HTTP client selected by kind ("fast" or "std") for the
// (already loopback-checked) target u.
func NewDoer(kind string, u *url.URL, conns int, timeout time.Duration) (Doer, error) {
	switch kind {
	case "fast", "":
		port := u.Port()
		if port == "" {
			port = "80"
		}
		fc := NewFastClient(net.JoinHostPort(u.Hostname(), port), conns, timeout)
		fc.host = u.Host
		return fc, nil
	case "std":
		return &StdDoer{Client: NewClient(conns, timeout), Base: u.Scheme + "://" + u.Host}, nil
	}
	return nil, fmt.Errorf("unknown -client %q (want fast or std)", kind)
}
