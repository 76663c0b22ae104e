package main

import (
	"reflect"
	"testing"
)

func TestSplitStatements(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		stmts     []string
		rest      string
	}{
		{"one", "SELECT 1;", []string{"SELECT 1"}, ""},
		{"two on a line", "SELECT 1; SELECT 2;", []string{"SELECT 1", "SELECT 2"}, ""},
		{"unterminated", "SELECT 1; SELECT", []string{"SELECT 1"}, " SELECT"},
		{"spans lines", "SELECT\n  1\n;\n", []string{"SELECT\n  1"}, ""},
		{"empty statements", ";; ;\n", nil, ""},
		{"single quotes", "INSERT INTO t VALUES('a;b');", []string{"INSERT INTO t VALUES('a;b')"}, ""},
		{"doubled quote", "SELECT 'it''s; fine';", []string{"SELECT 'it''s; fine'"}, ""},
		{"open quote", "SELECT 'a;\nb", nil, "SELECT 'a;\nb"},
		{"double quotes", `SELECT "a;b" FROM t;`, []string{`SELECT "a;b" FROM t`}, ""},
		{"backticks", "SELECT `a;b` FROM t;", []string{"SELECT `a;b` FROM t"}, ""},
		{"brackets", "SELECT [a;b] FROM t;", []string{"SELECT [a;b] FROM t"}, ""},
		{"line comment", "SELECT 1 -- not; the end\n, 2;", []string{"SELECT 1 -- not; the end\n, 2"}, ""},
		{"block comment", "SELECT /* ; */ 1;", []string{"SELECT /* ; */ 1"}, ""},
		{"open block comment", "SELECT 1 /* ;", nil, "SELECT 1 /* ;"},
		{"leading comments dropped", "-- first\n/* second */ SELECT 1;", []string{"SELECT 1"}, ""},
		{"comment only", "-- nothing; here\n;", nil, ""},
		{"trailing comment is no rest", "SELECT 1; -- done\n", []string{"SELECT 1"}, ""},
		{"trigger body", "CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET x=1; DELETE FROM u; END; SELECT 1;",
			[]string{"CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET x=1; DELETE FROM u; END", "SELECT 1"}, ""},
		{"temp trigger unfinished", "create temp trigger tr after insert on t begin\n  update t set x=1;\n",
			nil, "create temp trigger tr after insert on t begin\n  update t set x=1;\n"},
		{"END elsewhere", "SELECT 1 AS end; SELECT 2;", []string{"SELECT 1 AS end", "SELECT 2"}, ""},
		{"CASE ... END; in a trigger body", "CREATE TRIGGER tr AFTER DELETE ON t BEGIN UPDATE s SET x = CASE WHEN old.id > 5 THEN 1 ELSE 0 END; INSERT INTO s VALUES(old.id); END; SELECT 1;",
			[]string{"CREATE TRIGGER tr AFTER DELETE ON t BEGIN UPDATE s SET x = CASE WHEN old.id > 5 THEN 1 ELSE 0 END; INSERT INTO s VALUES(old.id); END", "SELECT 1"}, ""},
		{"trigger ending in CASE ... END; END;", "CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE s SET x = CASE new.v WHEN 1 THEN 2 END; END;",
			[]string{"CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE s SET x = CASE new.v WHEN 1 THEN 2 END; END"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stmts, rest := splitStatements(tc.src)
			if !reflect.DeepEqual(stmts, tc.stmts) || rest != tc.rest {
				t.Fatalf("splitStatements(%q) = %q, rest %q; want %q, rest %q", tc.src, stmts, rest, tc.stmts, tc.rest)
			}
		})
	}
}

func TestRouting(t *testing.T) {
	for _, tc := range []struct {
		sql       string
		keyword   string
		read      bool
		resending bool
	}{
		{"SELECT 1", "SELECT", true, true},
		{"  select*from t", "SELECT", true, true},
		{"(SELECT 1)", "SELECT", true, true},
		{"-- hi\nSELECT 1", "SELECT", true, true},
		{"VALUES(1)", "VALUES", true, true},
		{"EXPLAIN QUERY PLAN SELECT 1", "EXPLAIN", true, true},
		{"PRAGMA table_info(t)", "PRAGMA", true, true},
		{"PRAGMA user_version = 3", "PRAGMA", true, false},
		{"WITH a AS (SELECT 1) INSERT INTO t SELECT * FROM a", "WITH", true, false},
		{"with a as (select 1) select * from a", "WITH", true, true},
		{"WITH a AS (SELECT 1) DELETE FROM t WHERE x IN a", "WITH", true, false},
		{"WITH a AS (SELECT 'update' AS w) SELECT * FROM a", "WITH", true, false}, // a quoted word counts: may write
		{"INSERT INTO t VALUES(1)", "INSERT", false, false},
		{"create table t(x)", "CREATE", false, false},
		{"", "", false, false},
	} {
		if got := firstKeyword(tc.sql); got != tc.keyword {
			t.Errorf("firstKeyword(%q) = %q, want %q", tc.sql, got, tc.keyword)
		}
		if got := isRead(tc.sql); got != tc.read {
			t.Errorf("isRead(%q) = %v, want %v", tc.sql, got, tc.read)
		}
		if got := resendable(tc.sql); got != tc.resending {
			t.Errorf("resendable(%q) = %v, want %v", tc.sql, got, tc.resending)
		}
	}
}
