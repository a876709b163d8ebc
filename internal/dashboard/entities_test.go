package dashboard

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/internal/control"
	"github.com/reprise-dev/reprise/internal/entity"
	"github.com/reprise-dev/reprise/store"
)

func (f *fakeBackend) Entities() []string { return []string{"counter", "Account"} }

func (f *fakeBackend) QueryEntities(_ context.Context, q control.EntityQuery) ([]control.EntityRecord, string, error) {
	f.lastEntityQuery = q
	if f.listErr != nil {
		return nil, "", f.listErr
	}
	if q.ContinuationToken != "" && q.ContinuationToken != "page2" {
		return nil, "", store.ErrInvalidToken
	}
	var out []control.EntityRecord
	for _, e := range f.entities {
		e.State, e.Ops = nil, nil
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b control.EntityRecord) int { return strings.Compare(a.InstanceID, b.InstanceID) })
	return out, "page2", nil
}

func (f *fakeBackend) EntityDetail(_ context.Context, id string) (control.EntityRecord, error) {
	e, ok := f.entities[id]
	if !ok {
		return control.EntityRecord{}, control.ErrEntityNotFound
	}
	return e, nil
}

// xssKey is an entity key that is markup: the API returns it as data, and the page must show it
// as text.
const xssKey = `<img src=x onerror=alert(1)>`

func fakeWithEntities() *fakeBackend {
	f := newFake()
	f.entities = map[string]control.EntityRecord{
		"@counter@cats": {InstanceID: "@counter@cats", Name: "counter", Key: "cats", LastModified: t0, Exists: true,
			State: json.RawMessage(`{ "n": 3 }`), LockedBy: "orch-1", Backlog: 2,
			Ops: []entity.Op{
				{Time: t0, Name: "add", RequestID: "r1"},
				{Time: t0.Add(time.Second), Name: "get", RequestID: "r2", Caller: "orch-1", Failed: true},
			}},
		"@counter@" + xssKey: {InstanceID: "@counter@" + xssKey, Name: "counter", Key: xssKey, LastModified: t0.Add(time.Minute)},
	}
	return f
}

func TestEntitiesListParsesFilters(t *testing.T) {
	f := fakeWithEntities()
	h := New(f, Options{})
	r := get(t, h, "/dashboard/api/entities?name=Counter&key=ca&modifiedFrom=2026-03-01T09:00:00%2B01:00&modifiedTo=2026-03-02&transient=true&top=20&token=page2&code=k")
	if r.code != http.StatusOK {
		t.Fatalf("%d %s", r.code, r.body)
	}
	q := f.lastEntityQuery
	want := control.EntityQuery{IDPrefix: "@counter@ca", LastModifiedFrom: t0.Add(-2 * time.Hour),
		LastModifiedTo: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), IncludeTransient: true, PageSize: 20, ContinuationToken: "page2"}
	if !q.LastModifiedFrom.Equal(want.LastModifiedFrom) || !q.LastModifiedTo.Equal(want.LastModifiedTo) {
		t.Errorf("times %v %v, want %v %v", q.LastModifiedFrom, q.LastModifiedTo, want.LastModifiedFrom, want.LastModifiedTo)
	}
	q.LastModifiedFrom, q.LastModifiedTo, want.LastModifiedFrom, want.LastModifiedTo = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if q != want {
		t.Errorf("query %+v, want %+v (a key prefix is an ID prefix under the lower-cased name)", q, want)
	}
	if q.WithState {
		t.Error("the listing asked for the state, which it does not show")
	}

	get(t, h, "/dashboard/api/entities?name=counter")
	if q := f.lastEntityQuery; q.Name != "counter" || q.IDPrefix != "" || q.IncludeTransient || q.PageSize != defaultTop {
		t.Errorf("name only: %+v", q)
	}
	get(t, h, "/dashboard/api/entities")
	if q := f.lastEntityQuery; q != (control.EntityQuery{PageSize: defaultTop}) {
		t.Errorf("default query %+v", q)
	}

	page := decode[EntityPage](t, r)
	if page.Next != "page2" || len(page.Entities) != 2 {
		t.Fatalf("page %+v", page)
	}
	wantRow := EntitySummary{ID: "@counter@cats", Name: "counter", Key: "cats", LastModified: "2026-03-01T10:00:00Z",
		LockedBy: "orch-1", Backlog: 2, Exists: true}
	if page.Entities[1] != wantRow {
		t.Errorf("row %+v, want %+v", page.Entities[1], wantRow)
	}
	if page.Entities[0].Key != xssKey || page.Entities[0].Exists {
		t.Errorf("transient row %+v", page.Entities[0])
	}
	// Exact JSON keys, as the page reads them. A key of markup is data: it travels as a JSON
	// string, in a response the browser must not sniff into HTML.
	var raw map[string][]map[string]any
	_ = json.Unmarshal(r.body, &raw)
	for _, k := range []string{"id", "name", "key", "lastModified", "lockedBy", "backlog", "exists"} {
		if _, ok := raw["entities"][1][k]; !ok {
			t.Errorf("row without %q: %v", k, raw["entities"][1])
		}
	}
	if ct := r.hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") || r.hdr.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("Content-Type %q, X-Content-Type-Options %q: want JSON, not sniffed", ct, r.hdr.Get("X-Content-Type-Options"))
	}
}

func TestEntitiesBadInputIs400(t *testing.T) {
	h := New(fakeWithEntities(), Options{})
	long := strings.Repeat("x", 100_000)
	for target, want := range map[string]string{
		"/dashboard/api/entities?name=%FF":                                           "entity name is not valid UTF-8",
		"/dashboard/api/entities?name=counter&key=%C3%28":                            "key prefix is not valid UTF-8",
		"/dashboard/api/entities?name=counter&key=a%00b":                             "NUL",
		"/dashboard/api/entities?name=" + long:                                       "entity name is 100000 bytes long",
		"/dashboard/api/entities?name=counter&key=" + long:                           "key prefix is 100000 bytes long",
		"/dashboard/api/entities?name=a@b":                                           "cannot contain '@'",
		"/dashboard/api/entities?key=a":                                              "a key prefix needs an entity name",
		"/dashboard/api/entities?modifiedFrom=yesterday":                             `invalid modifiedFrom "yesterday"`,
		"/dashboard/api/entities?modifiedTo=2026-13-45":                              "invalid modifiedTo",
		"/dashboard/api/entities?modifiedFrom=0001-01-01":                            "want a time from 1678-01-01",
		"/dashboard/api/entities?modifiedFrom=2026-03-02&modifiedTo=2026-03-01":      "modifiedTo (2026-03-01T00:00:00Z) is before modifiedFrom",
		"/dashboard/api/entities?transient=maybe":                                    `invalid transient "maybe"`,
		"/dashboard/api/entities?top=0":                                              `invalid top "0"`,
		"/dashboard/api/entities?top=99999999999999999999":                           "invalid top",
		"/dashboard/api/entities?token=forged":                                       "invalid continuation token",
		"/dashboard/api/entities?token=%FF%FE":                                       "invalid continuation token",
		"/dashboard/api/entities?token=" + long:                                      "invalid continuation token",
		"/dashboard/api/entities?status=Running":                                     `unknown query parameter "status"`,
		"/dashboard/api/entities?name=a&name=b":                                      `"name" is given 2 times`,
		"/dashboard/api/entity?name=counter":                                         "by its name and key",
		"/dashboard/api/entity?key=cats":                                             "by its name and key",
		"/dashboard/api/entity?name=counter&key=%FF":                                 "entity key is not valid UTF-8",
		"/dashboard/api/entity?name=%FF&key=a":                                       "entity name is not valid UTF-8",
		"/dashboard/api/entity?name=a@b&key=c":                                       "cannot contain '@'",
		"/dashboard/api/entity?name=&key=c":                                          "the entity name is empty",
		"/dashboard/api/entity?name=counter&key=" + long:                             "entity key is 100000 bytes long",
		"/dashboard/api/entity?name=counter&key=a&extra=1":                           `unknown query parameter "extra"`,
		"/dashboard/api/entity?name=counter&key=a&key=b":                             `"key" is given 2 times`,
		"/dashboard/api/entities?name=counter&modifiedFrom=2026-03-01T10:00:00%2B99": "invalid modifiedFrom",
	} {
		r := get(t, h, target)
		if r.code != http.StatusBadRequest {
			t.Errorf("GET %s: %d %s, want 400", cut(target, 120), r.code, cut(string(r.body), 200))
			continue
		}
		if msg := messageOf(t, r); !strings.Contains(msg, want) || len(msg) > 1000 {
			t.Errorf("GET %s: message %q, want it to contain %q (and not echo a huge parameter)", cut(target, 120), cut(msg, 300), want)
		}
	}
}

func TestEntityDetail(t *testing.T) {
	f := fakeWithEntities()
	h := New(f, Options{})
	r := get(t, h, "/dashboard/api/entity?name=counter&key=cats")
	if r.code != http.StatusOK {
		t.Fatalf("%d %s", r.code, r.body)
	}
	d := decode[EntityDetail](t, r)
	if d.ID != "@counter@cats" || d.State != `{"n":3}` || d.StateCut || d.StateBytes != 7 || d.LockedBy != "orch-1" || d.Backlog != 2 || !d.Exists {
		t.Errorf("detail %+v", d)
	}
	// The last operations, newest first.
	want := []EntityOp{
		{Time: "2026-03-01T10:00:01Z", Operation: "get", RequestID: "r2", Caller: "orch-1", Failed: true},
		{Time: "2026-03-01T10:00:00Z", Operation: "add", RequestID: "r1"},
	}
	if !slices.Equal(d.Ops, want) {
		t.Errorf("ops %+v, want %+v", d.Ops, want)
	}
	var raw map[string]any
	_ = json.Unmarshal(r.body, &raw)
	for _, k := range []string{"id", "name", "key", "lastModified", "backlog", "exists", "state", "stateCut", "stateBytes", "ops"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("detail without %q: %s", k, r.body)
		}
	}

	// The name is matched case-insensitively, as the entity's ID lower-cases it; a key of markup
	// is a key like another. An entity without state has no state and an empty list of ops.
	r = get(t, h, "/dashboard/api/entity?name=Counter&key="+url.QueryEscape(xssKey))
	d = decode[EntityDetail](t, r)
	if r.code != http.StatusOK || d.Key != xssKey || d.Exists || d.State != "" || d.Ops == nil || len(d.Ops) != 0 {
		t.Errorf("transient entity: %d %s", r.code, r.body)
	}

	// A huge state is cut, and says so.
	big := f.entities["@counter@cats"]
	big.State = json.RawMessage(`"` + strings.Repeat("é", stateLimit) + `"`)
	f.entities["@counter@cats"] = big
	d = decode[EntityDetail](t, get(t, h, "/dashboard/api/entity?name=counter&key=cats"))
	if !d.StateCut || d.StateBytes != len(big.State) || len(d.State) > stateLimit+len("…") || !strings.HasSuffix(d.State, "…") {
		t.Errorf("huge state: cut %v, %d of %d bytes", d.StateCut, len(d.State), d.StateBytes)
	}

	r = get(t, h, "/dashboard/api/entity?name=counter&key=dogs")
	if msg := messageOf(t, r); r.code != http.StatusNotFound || !strings.Contains(msg, `no entity "@counter@dogs"`) || !strings.Contains(msg, "TestHub") {
		t.Errorf("unknown entity: %d %s", r.code, r.body)
	}
	f.listErr = errUnavailable
	if r := get(t, h, "/dashboard/api/entities"); r.code != http.StatusServiceUnavailable {
		t.Errorf("unavailable: %d %s", r.code, r.body)
	}
}
