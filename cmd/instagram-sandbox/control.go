package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/leadchat/instagram-operator/internal/instagram/fake"
)

// control is the sandbox's HTTP control surface under /_sandbox/, served on
// the same port as the fake Instagram so demo scripts can play the customer.
type control struct {
	fake  *fake.Server
	state *state
}

func (c *control) routes(mux *http.ServeMux) {
	mux.HandleFunc("POST /_sandbox/dm", c.dm)
	mux.HandleFunc("POST /_sandbox/reaction", c.reaction)
	mux.HandleFunc("POST /_sandbox/read", c.read)
	mux.HandleFunc("POST /_sandbox/unsend", c.unsend)
	mux.HandleFunc("POST /_sandbox/fail", c.fail)
	mux.HandleFunc("POST /_sandbox/event", c.event)
	mux.HandleFunc("GET /_sandbox/state", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, c.state) })
	mux.HandleFunc("GET /_sandbox/sent", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, c.fake.Sent()) })
	mux.HandleFunc("GET /_sandbox/calls", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, c.fake.Calls()) })
	mux.HandleFunc("GET /_sandbox/deliveries", c.deliveries)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

// deliveryStatus maps a delivery error to the control answer: the event
// exists on Instagram's side either way, so only the delivery failed.
func deliveryStatus(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, fake.ErrNotSubscribed):
		return http.StatusConflict
	case errors.Is(err, fake.ErrUnknownMessage):
		return http.StatusNotFound
	case errors.Is(err, fake.ErrInvalidEvent):
		return http.StatusBadRequest
	}
	return http.StatusBadGateway
}

// dm: POST /_sandbox/dm?to=<account user_id>&from=<igsid>&text=...
func (c *control) dm(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	m := fake.CustomerMessage{
		AccountUserID: orDefault(q.Get("to"), c.state.Accounts[0].UserID),
		CustomerID:    orDefault(q.Get("from"), c.state.Customers[0].IGSID),
		Text:          orDefault(q.Get("text"), "Hello from the sandbox"),
		ReplyToMID:    q.Get("reply_to"),
	}
	if u := q.Get("image_url"); u != "" {
		m.Text = q.Get("text")
		m.Attachments = []fake.Attachment{{Type: "image", Payload: fake.AttachmentPayload{URL: u}}}
	}
	mid, err := c.fake.DeliverMessage(r.Context(), m)
	answer := map[string]string{"mid": mid, "to": m.AccountUserID, "from": m.CustomerID}
	if err != nil {
		answer["error"] = err.Error()
	}
	writeJSON(w, deliveryStatus(err), answer)
}

// reaction: POST /_sandbox/reaction?mid=...&reaction=love&emoji=...&action=react|unreact
func (c *control) reaction(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	mid := orDefault(q.Get("mid"), c.lastSentMID())
	rx := fake.Reaction{MID: mid, Action: orDefault(q.Get("action"), "react")}
	if rx.Action == "react" {
		rx.Reaction = orDefault(q.Get("reaction"), "love")
		rx.Emoji = orDefault(q.Get("emoji"), "\u2764\ufe0f")
	}
	err := c.fake.DeliverReaction(r.Context(), rx)
	c.answerDelivery(w, mid, err)
}

// read: POST /_sandbox/read?mid=... (default: the last message sent)
func (c *control) read(w http.ResponseWriter, r *http.Request) {
	mid := orDefault(r.URL.Query().Get("mid"), c.lastSentMID())
	c.answerDelivery(w, mid, c.fake.DeliverRead(r.Context(), mid))
}

// unsend: POST /_sandbox/unsend?mid=... (a customer message)
func (c *control) unsend(w http.ResponseWriter, r *http.Request) {
	mid := r.URL.Query().Get("mid")
	c.answerDelivery(w, mid, c.fake.DeliverUnsend(r.Context(), mid))
}

// event: POST /_sandbox/event?to=<account>&from=<customer>[&standby=true]
// with a JSON body that is one messaging item's event key and value, e.g.
// {"postback": {"mid": "...", "title": "Start", "payload": "START"}}; or
// ?field=comments|live_comments|mentions with the change's value as body.
// Every event kind Instagram documents can be delivered this way.
func (c *control) event(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var body map[string]any
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("body: want one JSON object: %w", err))
		return
	}
	to := orDefault(q.Get("to"), c.state.Accounts[0].UserID)
	var err error
	if field := q.Get("field"); field != "" {
		err = c.fake.DeliverChange(r.Context(), to, field, body)
	} else {
		err = c.fake.DeliverItem(r.Context(), to, orDefault(q.Get("from"), c.state.Customers[0].IGSID), body, isTrue(q.Get("standby")))
	}
	answer := map[string]string{"to": to}
	if err != nil {
		answer["error"] = err.Error()
	}
	writeJSON(w, deliveryStatus(err), answer)
}

func (c *control) answerDelivery(w http.ResponseWriter, mid string, err error) {
	answer := map[string]string{"mid": mid}
	if err != nil {
		answer["error"] = err.Error()
	}
	writeJSON(w, deliveryStatus(err), answer)
}

func (c *control) lastSentMID() string {
	sent := c.fake.Sent()
	if len(sent) == 0 {
		return ""
	}
	return sent[len(sent)-1].MID
}

// fail: POST /_sandbox/fail?endpoint=send&n=1&code=4&subcode=&status=&message=&retry_after=&drop=true&after_processing=true
func (c *control) fail(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	endpoint := q.Get("endpoint")
	if endpoint == "" {
		writeError(w, http.StatusBadRequest, errors.New("endpoint is required"))
		return
	}
	ints := map[string]int{"n": 1}
	for _, k := range []string{"n", "code", "subcode", "status"} {
		if v := q.Get(k); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				writeError(w, http.StatusBadRequest, errors.New(k+" must be an integer"))
				return
			}
			ints[k] = n
		}
	}
	f := fake.Fault{
		HTTPStatus: ints["status"], Code: ints["code"], Subcode: ints["subcode"],
		Message: q.Get("message"), RetryAfter: q.Get("retry_after"),
		DropConnection: isTrue(q.Get("drop")), AfterProcessing: isTrue(q.Get("after_processing")),
		IsTransient: isTrue(q.Get("transient")),
	}
	c.fake.FailNext(endpoint, ints["n"], f)
	writeJSON(w, http.StatusOK, map[string]any{"endpoint": endpoint, "n": ints["n"]})
}

// deliveries: GET /_sandbox/deliveries, bodies as JSON.
func (c *control) deliveries(w http.ResponseWriter, _ *http.Request) {
	type delivery struct {
		fake.Delivery
		Body json.RawMessage `json:"body"`
	}
	var out []delivery
	for _, d := range c.fake.Deliveries() {
		body := json.RawMessage(d.Body)
		if !json.Valid(body) {
			body, _ = json.Marshal(string(d.Body))
		}
		out = append(out, delivery{Delivery: d, Body: body})
	}
	writeJSON(w, http.StatusOK, out)
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func isTrue(v string) bool {
	b, _ := strconv.ParseBool(strings.TrimSpace(v))
	return b
}
