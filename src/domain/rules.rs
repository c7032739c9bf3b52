//! Who may do what. Both the local API path and the inbox call these, so
//! neither can forget a rule.

use super::FollowState;

/// Only accepted members post or reply in a group.
pub fn may_post_in_group(membership: Option<FollowState>) -> bool {
    membership == Some(FollowState::Accepted)
}

/// Only the author edits or deletes a post (moderators come later).
pub fn may_change_post(actor_id: i64, author_id: i64) -> bool {
    actor_id == author_id
}

/// An Update is applied only when it is newer than what we hold.
pub fn is_newer(
    incoming: Option<chrono::DateTime<chrono::Utc>>,
    held: Option<chrono::DateTime<chrono::Utc>>,
) -> bool {
    match (incoming, held) {
        (Some(i), Some(h)) => i > h,
        (Some(_), None) => true,
        // A copy without a date is not an edit: keep what we hold.
        (None, _) => false,
    }
}

/// A public group shares only posts their authors made public: a direct or
/// followers-only post that names the group never becomes a public thread.
pub fn is_publicly_addressed<'a>(mut audience: impl Iterator<Item = &'a str>) -> bool {
    audience.any(|a| {
        matches!(
            a,
            "https://www.w3.org/ns/activitystreams#Public" | "as:Public" | "Public"
        )
    })
}

/// The public audience spelt in full (receivers that don't expand JSON-LD
/// only know this form): applied to what we pass on.
pub fn normalize_public(audience: &mut [String]) {
    for a in audience.iter_mut() {
        if is_publicly_addressed(std::iter::once(a.as_str())) {
            *a = "https://www.w3.org/ns/activitystreams#Public".to_string();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, Utc};

    #[test]
    fn membership_gates_posting() {
        assert!(may_post_in_group(Some(FollowState::Accepted)));
        assert!(!may_post_in_group(Some(FollowState::Pending)));
        assert!(!may_post_in_group(None));
    }

    #[test]
    fn only_public_posts_are_shared() {
        assert!(is_publicly_addressed(
            ["https://g.example/groups/x", "as:Public"].into_iter()
        ));
        assert!(is_publicly_addressed(
            ["https://www.w3.org/ns/activitystreams#Public"].into_iter()
        ));
        assert!(!is_publicly_addressed(
            ["https://g.example/groups/x"].into_iter()
        ));
        assert!(!is_publicly_addressed(std::iter::empty()));
    }

    #[test]
    fn only_the_author_changes_a_post() {
        assert!(may_change_post(1, 1));
        assert!(!may_change_post(1, 2));
    }

    #[test]
    fn older_updates_are_ignored() {
        let t = Utc::now();
        assert!(is_newer(Some(t), Some(t - Duration::seconds(1))));
        assert!(!is_newer(Some(t - Duration::seconds(1)), Some(t)));
        assert!(!is_newer(Some(t), Some(t)));
        assert!(is_newer(Some(t), None));
        assert!(!is_newer(None, Some(t)));
        assert!(!is_newer(None, None));
    }
}
