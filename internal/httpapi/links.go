package httpapi

import (
	"net/http"
	"net/url"
	"strings"
)

// Links are the management URLs of one instance: the extension's HttpManagementPayload, with its
// JSON keys in its order. They always point at WebhookBase on the origin the caller used.
type Links struct {
	ID                    string `json:"id"`
	StatusQueryGetURI     string `json:"statusQueryGetUri"`
	SendEventPostURI      string `json:"sendEventPostUri"`
	TerminatePostURI      string `json:"terminatePostUri"`
	RewindPostURI         string `json:"rewindPostUri"`
	PurgeHistoryDeleteURI string `json:"purgeHistoryDeleteUri"`
	RestartPostURI        string `json:"restartPostUri"`
	SuspendPostURI        string `json:"suspendPostUri"`
	ResumePostURI         string `json:"resumePostUri"`
}

// checkStatusBody is the body of the 202 check-status response: the extension serialises it
// without rewindPostUri (docs/compat/durable-functions-http.md §3), and some callers compare bodies.
type checkStatusBody struct {
	ID                    string `json:"id"`
	StatusQueryGetURI     string `json:"statusQueryGetUri"`
	SendEventPostURI      string `json:"sendEventPostUri"`
	TerminatePostURI      string `json:"terminatePostUri"`
	PurgeHistoryDeleteURI string `json:"purgeHistoryDeleteUri"`
	RestartPostURI        string `json:"restartPostUri"`
	SuspendPostURI        string `json:"suspendPostUri"`
	ResumePostURI         string `json:"resumePostUri"`
}

// CreationURLs are the start URLs of the client binding, with the extension's literal
// placeholders, which the clients replace.
type CreationURLs struct {
	CreateNewInstancePostURI          string `json:"createNewInstancePostUri"`
	CreateAndWaitOnNewInstancePostURI string `json:"createAndWaitOnNewInstancePostUri"`
}

// ClientData is the durable client binding JSON (docs/compat/durable-functions-http.md §8.1), from which the JavaScript and
// Python clients are constructed. The gRPC-mode keys (connectionName, httpBaseUrl) are left out:
// the JavaScript client cannot use that mode.
type ClientData struct {
	TaskHubName                   string       `json:"taskHubName"`
	CreationURLs                  CreationURLs `json:"creationUrls"`
	ManagementURLs                Links        `json:"managementUrls"`
	BaseURL                       string       `json:"baseUrl"`
	RequiredQueryStringParameters string       `json:"requiredQueryStringParameters"`
	RPCBaseURL                    string       `json:"rpcBaseUrl"`
}

// Links returns the management URLs of instance id, on the origin of r.
func (a *API) Links(r *http.Request, id string) Links { return a.links(origin(r), id) }

// WriteCheckStatus writes the 202 check-status response for id: the management URLs without
// rewindPostUri, Location (the status URL) and Retry-After: 10.
func (a *API) WriteCheckStatus(w http.ResponseWriter, r *http.Request, id string) {
	l := a.Links(r, id)
	w.Header().Set("Location", l.StatusQueryGetURI)
	w.Header().Set("Retry-After", "10")
	WriteJSON(w, http.StatusAccepted, checkStatusBody{
		ID:                    l.ID,
		StatusQueryGetURI:     l.StatusQueryGetURI,
		SendEventPostURI:      l.SendEventPostURI,
		TerminatePostURI:      l.TerminatePostURI,
		PurgeHistoryDeleteURI: l.PurgeHistoryDeleteURI,
		RestartPostURI:        l.RestartPostURI,
		SuspendPostURI:        l.SuspendPostURI,
		ResumePostURI:         l.ResumePostURI,
	})
}

// ClientData returns the client binding JSON for a server reached at origin, such as
// "http://127.0.0.1:7071". The managementUrls carry the INSTANCEID placeholder the clients replace.
func (a *API) ClientData(origin string) ClientData {
	origin = strings.TrimRight(origin, "/")
	base := origin + WebhookBase
	key := a.keyQuery()
	withKey := func(sep string) string {
		if key == "" {
			return ""
		}
		return sep + key
	}
	start := base + "/orchestrators/{functionName}[/{instanceId}]"
	// The JavaScript client sends no entity call in webhook mode without
	// requiredQueryStringParameters; a host without a key names its task hub there instead.
	required := key
	if required == "" {
		required = "taskHub=" + url.QueryEscape(a.backend.Hub())
	}
	return ClientData{
		TaskHubName: a.backend.Hub(),
		CreationURLs: CreationURLs{
			CreateNewInstancePostURI: start + withKey("?"),
			CreateAndWaitOnNewInstancePostURI: start +
				"?timeout={timeoutInSeconds}&pollingInterval={intervalInSeconds}" + withKey("&"),
		},
		ManagementURLs:                a.links(origin, "INSTANCEID"),
		BaseURL:                       base,
		RequiredQueryStringParameters: required,
		// The clients resolve relative paths against it with new URL(rel, base): it must end in '/'.
		RPCBaseURL: origin + RPCBase + "/",
	}
}

// links builds the URLs as the extension's GetClientResponseLinks does.
func (a *API) links(origin, id string) Links {
	inst := origin + WebhookBase + "/instances/" + url.PathEscape(id)
	qs := "taskHub=" + url.QueryEscape(a.backend.Hub()) + "&connection=" + url.QueryEscape(a.connection)
	if key := a.keyQuery(); key != "" {
		qs += "&" + key
	}
	return Links{
		ID:                    id,
		StatusQueryGetURI:     inst + "?" + qs,
		SendEventPostURI:      inst + "/raiseEvent/{eventName}?" + qs,
		TerminatePostURI:      inst + "/terminate?reason={text}&" + qs,
		RewindPostURI:         inst + "/rewind?reason={text}&" + qs,
		PurgeHistoryDeleteURI: inst + "?" + qs,
		RestartPostURI:        inst + "/restart?" + qs,
		SuspendPostURI:        inst + "/suspend?reason={text}&" + qs,
		ResumePostURI:         inst + "/resume?reason={text}&" + qs,
	}
}

// keyQuery is the query every generated URL needs to pass the key check ("" without a key).
func (a *API) keyQuery() string {
	if a.systemKey == "" {
		return ""
	}
	return "code=" + url.QueryEscape(a.systemKey)
}

// origin is scheme://host of the request as the caller addressed it.
func origin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	if host == "" {
		host = "localhost"
	}
	return scheme + "://" + host
}

// requestURL is the absolute URL of the request, the Location of a 202 status answer.
func requestURL(r *http.Request) string { return origin(r) + r.URL.RequestURI() }
