package controllers

import igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"

// migrateStatus moves status fields of earlier versions to their current
// names. It runs at the start of every reconcile; the deferred status patch
// writes the result once, after which there is nothing left to move.
func migrateStatus(st *igv1.InstagramChannelStatus) {
	// subscriptionCheckedAt held when the account was last subscribed, not
	// when the subscription was last checked: it is subscribedAt now.
	if st.SubscriptionCheckedAt != nil {
		if st.SubscribedAt == nil {
			st.SubscribedAt = st.SubscriptionCheckedAt
		}
		st.SubscriptionCheckedAt = nil
	}
}
