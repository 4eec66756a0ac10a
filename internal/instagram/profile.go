package instagram

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// The messenger profile of an account: ice breakers and the persistent
// menu (INSTAGRAM-API.md "Messenger profile").

// MessengerProfile is what the operator manages of the messenger profile.
// A nil list is "not set".
type MessengerProfile struct {
	IceBreakers    []IceBreakers
	PersistentMenu []PersistentMenu
}

// IceBreakers are the questions of one locale ("default" is required).
type IceBreakers struct {
	Locale    string
	Questions []IceBreaker
}

// IceBreaker is one question; a tap sends Payload as a postback.
type IceBreaker struct {
	Question string
	Payload  string
}

// PersistentMenu is the menu of one locale.
type PersistentMenu struct {
	Locale string
	Items  []MenuItem
}

// MenuItem is a postback (Payload) or web_url (URL) item.
type MenuItem struct {
	Type    string
	Title   string
	Payload string
	URL     string
}

// Profile field names.
const (
	ProfileFieldIceBreakers    = "ice_breakers"
	ProfileFieldPersistentMenu = "persistent_menu"
)

type (
	iceBreakersBody struct {
		CallToActions []iceBreakerBody `json:"call_to_actions"`
		Locale        string           `json:"locale"`
	}
	iceBreakerBody struct {
		Question string `json:"question"`
		Payload  string `json:"payload"`
	}
	menuBody struct {
		Locale        string         `json:"locale"`
		CallToActions []menuItemBody `json:"call_to_actions"`
	}
	menuItemBody struct {
		Type    string `json:"type"`
		Title   string `json:"title"`
		Payload string `json:"payload,omitempty"`
		URL     string `json:"url,omitempty"`
	}
	profileBody struct {
		IceBreakers    []iceBreakersBody `json:"ice_breakers,omitempty"`
		PersistentMenu []menuBody        `json:"persistent_menu,omitempty"`
	}
)

func (c *client) profileURL(q url.Values) string { return c.graphURL("/me/messenger_profile", q) }

// MessengerProfile reads the ice breakers and persistent menu:
// GET /vNN.0/me/messenger_profile?fields=ice_breakers,persistent_menu.
func (c *client) MessengerProfile(ctx context.Context, token string) (*MessengerProfile, error) {
	q := url.Values{}
	q.Set("fields", ProfileFieldIceBreakers+","+ProfileFieldPersistentMenu)
	var out *MessengerProfile
	err := c.do(ctx, request{
		endpoint: EndpointMessengerProfile, method: http.MethodGet, url: c.profileURL(q),
		bearer: token, secrets: []string{token},
	}, func(body []byte) error {
		// {"data":[{...}]} as Messenger answers, or a bare object.
		var answer struct {
			profileBody
			Data []profileBody `json:"data"`
		}
		if err := json.Unmarshal(body, &answer); err != nil {
			return err
		}
		p := answer.profileBody
		for _, d := range answer.Data {
			p.IceBreakers = append(p.IceBreakers, d.IceBreakers...)
			p.PersistentMenu = append(p.PersistentMenu, d.PersistentMenu...)
		}
		out = &MessengerProfile{}
		for _, ib := range p.IceBreakers {
			set := IceBreakers{Locale: ib.Locale}
			for _, q := range ib.CallToActions {
				set.Questions = append(set.Questions, IceBreaker(q))
			}
			out.IceBreakers = append(out.IceBreakers, set)
		}
		for _, m := range p.PersistentMenu {
			menu := PersistentMenu{Locale: m.Locale}
			for _, it := range m.CallToActions {
				menu.Items = append(menu.Items, MenuItem(it))
			}
			out.PersistentMenu = append(out.PersistentMenu, menu)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// SetMessengerProfile sets the fields of p that are not nil:
// POST /vNN.0/me/messenger_profile.
func (c *client) SetMessengerProfile(ctx context.Context, token string, p MessengerProfile) error {
	var b profileBody
	for _, ib := range p.IceBreakers {
		set := iceBreakersBody{Locale: ib.Locale, CallToActions: []iceBreakerBody{}}
		for _, q := range ib.Questions {
			set.CallToActions = append(set.CallToActions, iceBreakerBody(q))
		}
		b.IceBreakers = append(b.IceBreakers, set)
	}
	for _, m := range p.PersistentMenu {
		menu := menuBody{Locale: m.Locale, CallToActions: []menuItemBody{}}
		for _, it := range m.Items {
			menu.CallToActions = append(menu.CallToActions, menuItemBody(it))
		}
		b.PersistentMenu = append(b.PersistentMenu, menu)
	}
	if b.IceBreakers == nil && b.PersistentMenu == nil {
		return badRequest(EndpointSetProfile, "nothing to set")
	}
	return c.do(ctx, request{
		endpoint: EndpointSetProfile, method: http.MethodPost, url: c.profileURL(nil),
		bearer: token, json: b, secrets: []string{token},
	}, decodeResult)
}

// DeleteMessengerProfile removes fields (ice_breakers, persistent_menu):
// DELETE /vNN.0/me/messenger_profile with {"fields":[...]}.
func (c *client) DeleteMessengerProfile(ctx context.Context, token string, fields []string) error {
	if len(fields) == 0 {
		return badRequest(EndpointDeleteProfile, "no fields")
	}
	return c.do(ctx, request{
		endpoint: EndpointDeleteProfile, method: http.MethodDelete, url: c.profileURL(nil),
		bearer: token, json: map[string][]string{"fields": fields}, secrets: []string{token},
	}, decodeResult)
}

// decodeResult accepts {"result":"success"} (Messenger's answer) or
// {"success":true}.
func decodeResult(body []byte) error {
	var answer struct {
		Result string `json:"result"`
	}
	if err := json.Unmarshal(body, &answer); err == nil && strings.EqualFold(answer.Result, "success") {
		return nil
	}
	return decodeSuccess(body)
}
