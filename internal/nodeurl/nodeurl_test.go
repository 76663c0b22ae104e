package nodeurl

import (
	"reflect"
	"strings"
	"testing"
)

func TestNormalize_Table(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		wantErr  bool
	}{
		{in: "127.0.0.1:4001", want: "http://127.0.0.1:4001"},
		{in: " localhost:4001/ ", want: "http://localhost:4001"},
		{in: "http://127.0.0.1:4001", want: "http://127.0.0.1:4001"},
		{in: "https://db.example:443/", want: "https://db.example:443"},
		{in: "http://h:4001/prefix/", want: "http://h:4001/prefix"},
		{in: ":4001", want: "http://127.0.0.1:4001"},
		{in: "[::1]:4001", want: "http://[::1]:4001"},
		{in: "", wantErr: true},
		{in: "ftp://h:21", wantErr: true},
		{in: "http://", wantErr: true},
		{in: "h:4001/db/query?q=1", wantErr: true},
	} {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Normalize(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Normalize(%q)=%q, want an error", tt.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Normalize(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("Normalize(%q)=%q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseList_DropsRepeats(t *testing.T) {
	got, err := ParseList("127.0.0.1:4001, http://127.0.0.1:4011/,,127.0.0.1:4001")
	if err != nil {
		t.Fatal(err)
	}
	if want := "http://127.0.0.1:4001,http://127.0.0.1:4011"; strings.Join(got, ",") != want {
		t.Fatalf("ParseList=%q, want %q", got, want)
	}
	if _, err := ParseList(" , "); err == nil {
		t.Fatal("ParseList of nothing: want an error")
	}
}

func TestNormalize_MoreForms(t *testing.T) {
	good := map[string]string{
		"127.0.0.1:4001":         "http://127.0.0.1:4001",
		" localhost:4001/ ":      "http://localhost:4001",
		"http://h:4001":          "http://h:4001",
		"https://h:4001/prefix/": "https://h:4001/prefix",
		":4001":                  "http://127.0.0.1:4001",
	}
	for in, want := range good {
		got, err := Normalize(in)
		if err != nil || got != want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "  ", "ftp://h:1", "http://", "h:1/?x=1", "h:1/#frag"} {
		if got, err := Normalize(in); err == nil {
			t.Errorf("Normalize(%q) = %q, want an error", in, got)
		}
	}
}

func TestParseList_SkipsBlanks(t *testing.T) {
	got, err := ParseList("127.0.0.1:4001, ,http://127.0.0.1:4001/,127.0.0.1:4011")
	want := []string{"http://127.0.0.1:4001", "http://127.0.0.1:4011"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseList = %q, %v; want %q", got, err, want)
	}
	if _, err := ParseList(" , "); err == nil {
		t.Fatal("ParseList of nothing: want an error")
	}
}
