// Package nodeurl turns node addresses as users type them into base URLs, for the commands that take a list
// of nodes (rowboat-bench, rowboat-failover).
package nodeurl

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Normalize turns a node address as a user types it ("127.0.0.1:4001", "localhost:4001/", "http://h:4001",
// ":4001") into a base URL without a trailing slash. A query or fragment is an error.
func Normalize(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("empty address")
	}
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("parse %q: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("%q: scheme must be http or https", s)
	}
	if u.Host == "" {
		return "", fmt.Errorf("%q: no host", s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q: a base URL has no query or fragment", s)
	}
	if strings.HasPrefix(u.Host, ":") { // ":4001" means this machine
		u.Host = "127.0.0.1" + u.Host
	}
	return strings.TrimRight(u.Scheme+"://"+u.Host+u.Path, "/"), nil
}

// ParseList splits a comma-separated list of node addresses, normalizes each one and drops repeats; an empty
// list is an error.
func ParseList(list string) ([]string, error) {
	var urls []string
	for _, part := range strings.Split(list, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		u, err := Normalize(part)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(urls, u) {
			urls = append(urls, u)
		}
	}
	if len(urls) == 0 {
		return nil, errors.New("no node URLs")
	}
	return urls, nil
}
