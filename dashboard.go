package reprise

import (
	"context"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/reprise-dev/reprise/internal/control"
	"github.com/reprise-dev/reprise/internal/dashboard"
	"github.com/reprise-dev/reprise/store"
)

// dashboardBackend serves the dashboard from the App's control plane and registry; the methods it shares
// with the management API (and the classification of errors) come from backend.
type dashboardBackend struct{ backend }

var _ dashboard.Backend = dashboardBackend{}

func (b dashboardBackend) Orchestrators() []string { return slices.Clone(b.a.reg.names) }

func (b dashboardBackend) Entities() []string { return slices.Clone(b.a.reg.entityNames) }

func (b dashboardBackend) QueryEntities(ctx context.Context, q control.EntityQuery) ([]control.EntityRecord, string, error) {
	p, err := b.a.plane()
	if err != nil {
		return nil, "", err
	}
	return p.QueryEntities(ctx, q)
}

func (b dashboardBackend) EntityDetail(ctx context.Context, id string) (control.EntityRecord, error) {
	p, err := b.a.plane()
	if err != nil {
		return control.EntityRecord{}, err
	}
	return p.EntityDetail(ctx, id)
}

func (b dashboardBackend) CountInstances(ctx context.Context, q store.Query) (map[store.Status]int, error) {
	p, err := b.a.plane()
	if err != nil {
		return nil, err
	}
	return p.Count(ctx, q)
}

func (b dashboardBackend) Unclaimed() []store.Unclaimed {
	b.a.mu.Lock()
	eng := b.a.eng
	b.a.mu.Unlock()
	if eng == nil {
		return nil
	}
	return eng.Unclaimed()
}

// mountDashboard serves the dashboard at /dashboard/. The shell (HTML, CSS, JavaScript) carries no
// data and is served without a key; its JSON API requires the master key unless the management
// API is anonymous, and then the whole dashboard is behind the local guard (guardKeyless). Until
// Start, and after Shutdown, both answer 503.
func (a *App) mountDashboard() {
	a.mux.Handle(dashboard.Path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		dash, running, anonymous, guard := a.dash, a.eng != nil && !a.stopped, a.keys.anonMgmt, a.guard
		a.mu.Unlock()
		if dash == nil || !running {
			dashboard.SetSecurityHeaders(w)
			writeMessage(w, http.StatusServiceUnavailable, "the app is not running: it has not started or is shutting down")
			return
		}
		if anonymous && !guardKeyless(w, r, guard) {
			return
		}
		dash.ServeHTTP(w, r)
	}))
	a.mux.HandleFunc("GET "+strings.TrimSuffix(dashboard.Path, "/"), func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, dashboard.Path, http.StatusFound)
	})
}

// newDashboard returns the dashboard's handler; Start calls it with a.mu held, once the keys and
// the logger are known.
func (a *App) newDashboard() http.Handler {
	keys := a.keys
	return dashboard.New(dashboardBackend{backend{a}}, dashboard.Options{
		Authorize:   keys.admin,
		Anonymous:   keys.anonMgmt,
		KeyHelp:     a.masterKeyHelp(),
		NoMasterKey: len(keys.master) == 0,
		Logger:      a.logger,
		Live:        a.live,
	})
}

// masterKeyHelp says where the master key comes from and how to get it.
func (a *App) masterKeyHelp() string {
	switch from := a.cfg.src.from[setMaster]; from {
	case fromGenerated, fromStore:
		return "This host generated it and keeps it in its store: print it with `reprise keys` where the app runs."
	case fromOption:
		return "It is set in the app's code (WithKeys)."
	case "":
		return "Set one with REPRISE_MASTER_KEY (or WithKeys)."
	default:
		return "It is set by " + from + "."
	}
}

// admin authorises the dashboard's data: the master key, or nothing when the management API is
// anonymous (the dashboard shows no more than that API does).
func (k keyring) admin(r *http.Request) bool { return k.anonMgmt || k.carries(r, k.master) }

// logDashboard logs where the dashboard is, once the host listens, and what opens it.
func (a *App) logDashboard(addr net.Addr) {
	host := addr.String()
	if tcp, ok := addr.(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
		host = net.JoinHostPort("localhost", strconv.Itoa(tcp.Port))
	}
	url := "http://" + host + dashboard.Path
	a.mu.Lock()
	keys := a.keys
	a.mu.Unlock()
	switch {
	case keys.anonMgmt:
		a.logger.Info("dashboard at "+url, "url", url, "auth", "anonymous")
	case len(keys.master) == 0:
		a.logger.Warn("dashboard at "+url+": no master key is configured, so its data answers 401; set REPRISE_MASTER_KEY (or WithKeys) to use it",
			"url", url)
	default:
		a.logger.Info("dashboard at "+url, "url", url, "auth", "master key", "masterKey", a.masterKeyHelp())
	}
}
