package webhookserver_test

import (
	"net/http"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/names"
)

// Every documented field of every event lands typed in the object
// (INSTAGRAM-API.md "Webhook events, field by field").
var _ = Describe("Inbound fields", func() {
	var contact string
	BeforeEach(func() { contact = newContact() })

	deliver := func(items ...obj) {
		GinkgoHelper()
		Expect(post(delivery(entry(supportAccount, items...)), acmeSecret)).To(Equal(http.StatusOK))
	}

	It("keeps the lasting media id apart from the expiring URL for every attachment type", func() {
		mid := newMID()
		deliver(fromCustomer(supportAccount, contact, at(0), "message", obj{"mid": mid, "attachments": []any{
			obj{"type": "ig_story", "payload": obj{"story_media_id": "18000000000000001", "story_media_url": "https://cdn.example/story.mp4"}},
			obj{"type": "ig_reel", "payload": obj{"url": "https://cdn.example/reel.mp4", "title": "Summer reel", "reel_video_id": "18000000000000002"}},
			obj{"type": "ig_post", "payload": obj{"url": "https://cdn.example/post.jpg", "title": "New in", "ig_post_media_id": "18000000000000003"}},
			obj{"type": "image", "payload": obj{"url": "https://cdn.example/sticker.png", "sticker_id": 369239263222822}},
			obj{"type": "story_mention", "payload": obj{"url": "https://cdn.example/mention.jpg"}},
			obj{"type": "ephemeral"},
			obj{"type": "share", "payload": obj{"url": "https://cdn.example/p", "future_key": "kept", "nested": obj{"a": 1}}},
			obj{"type": "Brand-New", "payload": obj{"url": "https://cdn.example/n"}},
		}}))
		m := message("support", mid)
		Expect(m.Spec.Attachments).To(Equal([]igv1.Attachment{
			{Type: "ig_story", URL: "https://cdn.example/story.mp4", MediaID: "18000000000000001"},
			{Type: "ig_reel", URL: "https://cdn.example/reel.mp4", Title: "Summer reel", MediaID: "18000000000000002"},
			{Type: "ig_post", URL: "https://cdn.example/post.jpg", Title: "New in", MediaID: "18000000000000003"},
			{Type: "image", URL: "https://cdn.example/sticker.png", StickerID: "369239263222822"},
			{Type: "story_mention", URL: "https://cdn.example/mention.jpg"},
			{Type: "ephemeral"},
			{Type: "share", URL: "https://cdn.example/p", Extra: map[string]string{"future_key": "kept", "nested": `{"a":1}`}},
			{Type: "unknown", URL: "https://cdn.example/n", Extra: map[string]string{"type": "Brand-New"}},
		}))
	})

	It("tells a story reply from a reply to a message", func() {
		reply, story, repliedTo := newMID(), newMID(), newMID()
		deliver(
			fromCustomer(supportAccount, contact, at(0), "message", obj{"mid": reply, "text": "this one", "reply_to": obj{"mid": repliedTo}}),
			fromCustomer(supportAccount, contact, at(time.Second), "message", obj{"mid": story, "text": "wow", "reply_to": obj{"story": obj{"id": 17900000000000001, "url": "https://cdn.example/s.jpg"}}}),
		)
		r := message("support", reply)
		Expect(r.Spec.ReplyTo).To(Equal(repliedTo))
		Expect(r.Spec.ReplyToStory).To(BeNil())
		s := message("support", story)
		Expect(s.Spec.ReplyTo).To(BeEmpty())
		Expect(s.Spec.ReplyToStory).To(Equal(&igv1.StoryReference{ID: "17900000000000001", URL: "https://cdn.example/s.jpg"}))
	})

	It("records referrals in full: ads, Shops products, postbacks and ig.me links", func() {
		ad, shop, pb := newMID(), newMID(), newMID()
		deliver(
			fromCustomer(supportAccount, contact, at(0), "message", obj{"mid": ad, "text": "Hi! Is this available?", "referral": obj{
				"ref": "spring", "ad_id": "23850000000000001", "source": "ADS", "type": "OPEN_THREAD",
				"ads_context_data": obj{"ad_title": "Spring sale", "photo_url": "https://cdn.example/ad.jpg", "video_url": "https://cdn.example/ad.mp4", "post_id": "18000000000000009"},
			}}),
			fromCustomer(supportAccount, contact, at(time.Second), "message", obj{"mid": shop, "text": "In blue?", "referral": obj{"product": obj{"id": "7700000000000001"}}}),
			fromCustomer(supportAccount, contact, at(2*time.Second), "postback", obj{"mid": pb, "title": "Get started", "payload": "START",
				"referral": obj{"ref": "bio", "source": "SHORTLINK", "type": "OPEN_THREAD"}}),
			fromCustomer(supportAccount, contact, at(3*time.Second), "referral", obj{"ref": "story-link", "source": "SHORTLINK", "type": "OPEN_THREAD"}),
		)
		Expect(message("support", ad).Status.Referral).To(Equal(&igv1.Referral{
			Ref: "spring", AdID: "23850000000000001", Source: "ADS", Type: "OPEN_THREAD",
			AdsContext: &igv1.AdsContext{AdTitle: "Spring sale", PhotoURL: "https://cdn.example/ad.jpg", VideoURL: "https://cdn.example/ad.mp4", PostID: "18000000000000009"},
		}))
		Expect(message("support", shop).Status.Referral).To(Equal(&igv1.Referral{ProductID: "7700000000000001"}))
		p := message("support", pb)
		Expect(p.Status.Postback).To(Equal(&igv1.Postback{Title: "Get started", Payload: "START",
			Referral: &igv1.Referral{Ref: "bio", Source: "SHORTLINK", Type: "OPEN_THREAD"}}))
		Expect(p.Labels[igv1.LabelEvent]).To(Equal(igv1.EventLabelPostback))
		var refs igv1.InstagramMessageList
		Expect(k8s.List(ctx, &refs, client.InNamespace(ns), client.MatchingLabels{igv1.LabelContact: contact, igv1.LabelEvent: igv1.EventLabelReferral})).To(Succeed())
		Expect(refs.Items).To(HaveLen(1))
		Expect(refs.Items[0].Status.Referral).To(Equal(&igv1.Referral{Ref: "story-link", Source: "SHORTLINK", Type: "OPEN_THREAD"}))
	})

	It("keeps Meta's milliseconds, so a burst delivered in reverse order sorts right", func() {
		mids := []string{newMID(), newMID(), newMID()}
		var items []obj
		for i := len(mids) - 1; i >= 0; i-- {
			items = append(items, fromCustomer(supportAccount, contact, at(time.Duration(i)*120*time.Millisecond), "message",
				obj{"mid": mids[i], "attachments": []any{obj{"type": "image", "payload": obj{"url": "https://cdn.example/" + mids[i]}}}}))
		}
		deliver(items...)
		conv := conversation("support", contact)
		Expect(conv).To(HaveLen(3))
		slices.SortFunc(conv, func(a, b igv1.InstagramMessage) int { return a.Status.EventTime.Time.Compare(b.Status.EventTime.Time) })
		for i, m := range conv {
			Expect(m.Status.MessageID).To(Equal(mids[i]))
			Expect(m.Status.EventTime.Time).To(BeTemporally("==", t0.Add(time.Duration(i)*120*time.Millisecond)))
			Expect(m.Status.ReceivedAt).NotTo(BeNil())
		}
		// Stored with milliseconds in RFC 3339, as a watcher reads it.
		raw, err := conv[1].Status.EventTime.MarshalJSON()
		Expect(err).NotTo(HaveOccurred())
		Expect(string(raw)).To(ContainSubstring(".120"))
		// Created oldest first, too.
		Expect(conv[0].CreationTimestamp.Time).NotTo(BeTemporally(">", conv[2].CreationTimestamp.Time))
	})

	It("marks standby deliveries, and records opt-ins and handovers", func() {
		standbyMID := newMID()
		body := delivery(
			obj{"id": supportAccount, "time": t0.UnixMilli(), "standby": []any{
				fromCustomer(supportAccount, contact, at(0), "message", obj{"mid": standbyMID, "text": "for the other app"}),
			}},
			entry(supportAccount,
				fromCustomer(supportAccount, contact, at(time.Second), "optin", obj{
					"type": "notification_messages", "payload": "DEALS", "title": "Weekly deals",
					"notification_messages_token": "never-stored-0123", "notification_messages_frequency": "WEEKLY",
					"notification_messages_timezone": "Europe/Paris", "token_expiry_timestamp": at(30 * 24 * time.Hour), "user_token_status": "NOT_REFRESHED",
				}),
				fromCustomer(supportAccount, contact, at(2*time.Second), "pass_thread_control", obj{"previous_owner_app_id": "263902037430900", "new_owner_app_id": "1001", "metadata": "to bot"}),
				fromCustomer(supportAccount, contact, at(3*time.Second), "take_thread_control", obj{"previous_owner_app_id": "1001", "new_owner_app_id": "263902037430900"}),
				fromCustomer(supportAccount, contact, at(4*time.Second), "request_thread_control", obj{"requested_owner_app_id": "1001", "metadata": "please"}),
			),
		)
		before := counter("unknown", "ignored")
		Expect(post(body, acmeSecret)).To(Equal(http.StatusOK))
		Expect(counter("unknown", "ignored")).To(Equal(before), "no documented event is counted as unknown")

		sb := message("support", standbyMID)
		Expect(sb.Status.Standby).To(BeTrue())
		Expect(sb.Labels).NotTo(HaveKey(igv1.LabelAwaitingReply), "another app answers a standby thread")

		byEvent := map[string][]igv1.InstagramMessage{}
		for _, m := range conversation("support", contact) {
			byEvent[m.Labels[igv1.LabelEvent]] = append(byEvent[m.Labels[igv1.LabelEvent]], m)
		}
		Expect(byEvent[igv1.EventLabelOptin]).To(HaveLen(1))
		o := byEvent[igv1.EventLabelOptin][0].Status.Optin
		Expect(o.TokenExpiresAt.Time).To(BeTemporally("==", t0.Add(30*24*time.Hour)))
		o.TokenExpiresAt = nil
		Expect(o).To(Equal(&igv1.Optin{Type: "notification_messages", Payload: "DEALS", Title: "Weekly deals", Frequency: "WEEKLY",
			Timezone: "Europe/Paris", TokenStatus: "NOT_REFRESHED", HasToken: true}))

		handovers := byEvent[igv1.EventLabelHandover]
		Expect(handovers).To(HaveLen(3))
		slices.SortFunc(handovers, func(a, b igv1.InstagramMessage) int { return a.Status.EventTime.Compare(b.Status.EventTime.Time) })
		Expect(handovers[0].Status.Handover).To(Equal(&igv1.Handover{Action: "pass", PreviousOwnerAppID: "263902037430900", NewOwnerAppID: "1001", Metadata: "to bot"}))
		Expect(handovers[1].Status.Handover).To(Equal(&igv1.Handover{Action: "take", PreviousOwnerAppID: "1001", NewOwnerAppID: "263902037430900"}))
		Expect(handovers[2].Status.Handover).To(Equal(&igv1.Handover{Action: "request", RequestedOwnerAppID: "1001", Metadata: "please"}))
	})

	It("keeps a history of reactions, bounded, across react, change and unreact", func() {
		mid := newMID()
		deliver(fromCustomer(supportAccount, contact, at(0), "message", obj{"mid": mid, "text": "hi"}))
		deliver(
			fromCustomer(supportAccount, contact, at(time.Second), "reaction", obj{"mid": mid, "action": "react", "reaction": "love", "emoji": "❤️"}),
			fromCustomer(supportAccount, contact, at(2*time.Second), "reaction", obj{"mid": mid, "action": "react", "reaction": "laugh", "emoji": "😆"}),
			fromCustomer(supportAccount, contact, at(3*time.Second), "reaction", obj{"mid": mid, "action": "unreact"}),
		)
		m := message("support", mid)
		Expect(m.Status.Reactions).To(BeEmpty())
		h := m.Status.ReactionHistory
		Expect(h).To(HaveLen(2))
		Expect(h[0].Reaction).To(Equal("love"))
		Expect(h[0].By).To(Equal(contact))
		Expect(h[0].At.Time).To(BeTemporally("==", t0.Add(time.Second)))
		Expect(h[0].RemovedAt.Time).To(BeTemporally("==", t0.Add(2*time.Second)))
		Expect(h[1].Reaction).To(Equal("laugh"))
		Expect(h[1].RemovedAt.Time).To(BeTemporally("==", t0.Add(3*time.Second)))

		// Redelivery changes nothing; many reactions keep only the newest 20.
		deliver(fromCustomer(supportAccount, contact, at(time.Second), "reaction", obj{"mid": mid, "action": "react", "reaction": "love", "emoji": "❤️"}))
		Expect(message("support", mid).Status.ReactionHistory).To(HaveLen(2))
		var many []obj
		for i := range 25 {
			r := []string{"like", "wow"}[i%2]
			many = append(many, fromCustomer(supportAccount, contact, at(time.Duration(10+i)*time.Second), "reaction", obj{"mid": mid, "action": "react", "reaction": r}))
		}
		deliver(many...)
		h = message("support", mid).Status.ReactionHistory
		Expect(h).To(HaveLen(20))
		Expect(h[19].At.Time).To(BeTemporally("==", t0.Add(34*time.Second)))
	})

	It("labels what awaits a reply, and the business's answer clears it", func() {
		first, second, later := newMID(), newMID(), newMID()
		deliver(
			fromCustomer(supportAccount, contact, at(0), "message", obj{"mid": first, "text": "hello?"}),
			fromCustomer(supportAccount, contact, at(time.Second), "message", obj{"mid": second, "text": "anyone?"}),
		)
		awaiting := func() []string {
			var l igv1.InstagramMessageList
			Expect(k8s.List(ctx, &l, client.InNamespace(ns), client.MatchingLabels{
				igv1.LabelChannel: "support", igv1.LabelContact: contact, igv1.LabelAwaitingReply: "true",
			})).To(Succeed())
			var out []string
			for _, m := range l.Items {
				out = append(out, m.Status.MessageID)
			}
			return out
		}
		Expect(awaiting()).To(ConsistOf(first, second))
		deliver(
			fromBusiness(supportAccount, contact, at(2*time.Second), "message", obj{"mid": newMID(), "text": "Here!", "is_echo": true}),
			fromCustomer(supportAccount, contact, at(3*time.Second), "message", obj{"mid": later, "text": "thanks, one more thing"}),
		)
		Expect(awaiting()).To(ConsistOf(later))
	})

	It("clips what does not fit with a marker, names unknown fields, and skips a malformed item alone", func() {
		long, odd, good := newMID(), newMID(), newMID()
		unknownBefore := metricValue("instagram_webhook_unknown_fields_total", map[string]string{"type": "message"})
		malformedBefore := counter("malformed", "invalid")
		body := delivery(entry(supportAccount,
			fromCustomer(supportAccount, contact, at(0), "message", obj{"mid": long, "text": strings.Repeat("é", 5000),
				"attachments": []any{obj{"type": "image", "payload": obj{"url": "https://cdn.example/" + strings.Repeat("x", 9000)}}}}),
			fromCustomer(supportAccount, contact, at(time.Second), "message", obj{"mid": odd, "text": "new shape", "is_self": true}, "brand_new_key", obj{"x": 1}),
			obj{"sender": obj{"id": contact}, "recipient": obj{"id": supportAccount}, "timestamp": "not-a-time", "message": obj{"mid": newMID(), "text": "bad"}},
			fromCustomer(supportAccount, contact, at(2*time.Second), "message", obj{"mid": good, "text": "fine"}),
		))
		Expect(post(body, acmeSecret)).To(Equal(http.StatusOK))
		l := message("support", long)
		Expect(len(l.Spec.Text)).To(BeNumerically("<=", 8192))
		Expect(l.Spec.Text).To(HaveSuffix("…"))
		Expect(l.Spec.Attachments[0].URL).To(BeEmpty())
		Expect(l.Status.Clipped).To(ConsistOf("spec.text", "spec.attachments[0].url"))
		o := message("support", odd)
		Expect(o.Spec.Text).To(Equal("new shape"))
		Expect(o.Status.UnknownFields).To(Equal([]string{"brand_new_key", "message.is_self"}))
		Expect(metricValue("instagram_webhook_unknown_fields_total", map[string]string{"type": "message"})).To(Equal(unknownBefore + 2))
		Expect(message("support", good).Spec.Text).To(Equal("fine"))
		Expect(counter("malformed", "invalid")).To(Equal(malformedBefore + 1))
	})
})

var _ = Describe("Unclaimed accounts", func() {
	It("answers 503 while no channel serves the account, then records once the channel appears", func() {
		const account = "17841400000000088"
		contact, mid := newContact(), newMID()
		body := delivery(entry(account, fromCustomer(account, contact, at(0), "message", obj{"mid": mid, "text": "first DM"})))
		retry := counter("message", "retry")
		Expect(post(body, acmeSecret)).To(Equal(http.StatusServiceUnavailable))
		Expect(counter("message", "retry")).To(Equal(retry + 1))
		Expect(absent("late", mid)).To(BeTrue())

		late := &igv1.InstagramChannel{
			ObjectMeta: metav1.ObjectMeta{Name: "late", Namespace: ns},
			Spec:       igv1.InstagramChannelSpec{AppRef: igv1.AppReference{Kind: igv1.KindClusterInstagramApp, Name: "acme"}},
		}
		Expect(k8s.Create(ctx, late)).To(Succeed())
		DeferCleanup(func() { Expect(client.IgnoreNotFound(k8s.Delete(ctx, late))).To(Succeed()) })
		late.Status.Account = &igv1.AccountStatus{UserID: account}
		Expect(k8s.Status().Update(ctx, late)).To(Succeed())
		Eventually(func() int { return post(body, acmeSecret) }).Should(Equal(http.StatusOK))
		Expect(message("late", mid).Spec.Text).To(Equal("first DM"))
	})
})

var _ = Describe("Comments", func() {
	comment := func(field string, value obj) obj {
		return obj{"id": supportAccount, "time": t0.Unix(), "changes": []any{obj{"field": field, "value": value}}}
	}
	get := func(id string) *igv1.InstagramComment {
		GinkgoHelper()
		var c igv1.InstagramComment
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: names.CommentName("support", id)}, &c)).To(Succeed())
		return &c
	}

	It("records comments, replies, live comments and mentions, once each; the dashboard test is not one", func() {
		test := counter("test", "ignored")
		body := delivery(
			comment("comments", obj{"id": "17865799348089039", "from": obj{"id": "1784140000000555", "username": "jane.doe", "self_ig_scoped_id": "5512340000000999"},
				"media": obj{"id": "17887498072083520", "media_product_type": "FEED", "ad_id": "2385000001", "ad_title": "Boost", "original_media_id": "17887498072000000"},
				"text":  "How much? @acme.support"}),
			comment("comments", obj{"id": "17865799348089040", "parent_id": "17865799348089039", "from": obj{"id": "1784140000000556", "username": "acme.fan"},
				"media": obj{"id": "17887498072083520", "media_product_type": "FEED"}, "text": "Following!"}),
			comment("live_comments", obj{"id": "17865799348089041", "from": obj{"id": "1784140000000557", "username": "live.viewer"},
				"media": obj{"id": "17887498072083599", "media_product_type": "LIVE"}, "text": "Hello from the live"}),
			comment("mentions", obj{"media_id": "17887498072083520", "comment_id": "17865799348089039"}),
			// Meta's Instagram Login example, without the changes wrapper.
			obj{"id": supportAccount, "time": t0.Unix(), "field": "comments", "value": obj{"id": "17865799348089042", "from": obj{"id": "1784140000000558", "username": "flat"},
				"media": obj{"id": "17887498072083520", "media_product_type": "REELS"}, "text": "flat shape"}},
			obj{"id": "0", "time": t0.Unix(), "changes": []any{obj{"field": "comments", "value": obj{"id": "17865799348089043", "text": "This is an example."}}}},
		)
		Expect(post(body, acmeSecret)).To(Equal(http.StatusOK))
		Expect(post(body, acmeSecret)).To(Equal(http.StatusOK), "a redelivery")
		Expect(counter("test", "ignored")).To(Equal(test + 2))

		c := get("17865799348089039")
		Expect(c.Spec).To(Equal(igv1.InstagramCommentSpec{
			ChannelRef: igv1.ChannelReference{Name: "support"}, CommentID: "17865799348089039",
			Media: igv1.CommentMedia{ID: "17887498072083520", ProductType: "FEED", AdID: "2385000001", AdTitle: "Boost", OriginalMediaID: "17887498072000000"},
			From:  igv1.CommentAuthor{ID: "1784140000000555", Username: "jane.doe", SelfIGScopedID: "5512340000000999"},
			Text:  "How much? @acme.support", Mention: true,
		}))
		Expect(c.Labels).To(HaveKeyWithValue(igv1.LabelMedia, "17887498072083520"))
		Expect(c.OwnerReferences).To(ConsistOf(HaveField("UID", BeEquivalentTo(supportUID))))
		Expect(c.Status.EventTime.Time).To(BeTemporally("==", t0))
		Expect(get("17865799348089040").Spec.ParentID).To(Equal("17865799348089039"))
		live := get("17865799348089041")
		Expect(live.Spec.Live).To(BeTrue())
		Expect(live.Labels[igv1.LabelEvent]).To(Equal(igv1.EventLabelLiveComment))
		Expect(get("17865799348089042").Spec.Text).To(Equal("flat shape"))

		var all igv1.InstagramCommentList
		Expect(k8s.List(ctx, &all, client.InNamespace(ns), client.MatchingLabels{igv1.LabelChannel: "support"})).To(Succeed())
		n := 0
		for _, c := range all.Items {
			if c.Spec.Media.ID == "17887498072083520" || c.Spec.Media.ID == "17887498072083599" {
				n++
			}
		}
		Expect(n).To(Equal(4), "one object per comment, the mention merged into its comment")
	})

	It("applies a reported edit and removal", func() {
		id := "17865799348089100"
		base := obj{"id": id, "from": obj{"id": "1784140000000600", "username": "x"}, "media": obj{"id": "17887498072083600"}, "text": "first"}
		edited := obj{"id": id, "verb": "edited", "media": obj{"id": "17887498072083600"}, "text": "second"}
		removed := obj{"id": id, "verb": "remove", "media": obj{"id": "17887498072083600"}}
		Expect(post(delivery(comment("comments", base)), acmeSecret)).To(Equal(http.StatusOK))
		e := comment("comments", edited)
		e["time"] = t0.Add(time.Minute).Unix()
		Expect(post(delivery(e), acmeSecret)).To(Equal(http.StatusOK))
		c := get(id)
		Expect(c.Spec.Text).To(Equal("second"))
		Expect(c.Status.EditedAt).NotTo(BeNil())
		Expect(post(delivery(comment("comments", removed)), acmeSecret)).To(Equal(http.StatusOK))
		c = get(id)
		Expect(c.Spec.Text).To(BeEmpty())
		Expect(c.Status.DeletedAt).NotTo(BeNil())
	})
})
