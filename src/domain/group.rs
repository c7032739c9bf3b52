//! What a group is like: who sees it, how people get in, and the states of a
//! report. Plain types and the rules that read them.

/// Who sees a local group's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// Anyone, here and on every instance the policy allows.
    Public,
    /// Approved members only, wherever they live; served per actor.
    Members,
    /// Never federated: signed-in people of this instance only.
    Local,
}

impl Visibility {
    pub const ALL: [Visibility; 3] = [Visibility::Public, Visibility::Members, Visibility::Local];
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Members => "members",
            Visibility::Local => "local",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
    /// A stored value; an unknown one is treated as the most private that
    /// still federates nothing.
    pub fn of(stored: &str) -> Self {
        Self::parse(stored).unwrap_or(Visibility::Local)
    }
    pub fn label(self) -> &'static str {
        match self {
            Visibility::Public => "Public: anyone can read it",
            Visibility::Members => {
                "Members only: only approved members, wherever they are, can read it"
            }
            Visibility::Local => "This instance only: never federated; signed-in people here only",
        }
    }
    pub fn federates(self) -> bool {
        self != Visibility::Local
    }
}

/// How people join a local group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinPolicy {
    Open,
    /// Applicants (local or remote) wait for a moderator's decision.
    Approval,
    /// Only people a moderator invited.
    Invite,
}

impl JoinPolicy {
    pub const ALL: [JoinPolicy; 3] = [JoinPolicy::Open, JoinPolicy::Approval, JoinPolicy::Invite];
    pub fn as_str(self) -> &'static str {
        match self {
            JoinPolicy::Open => "open",
            JoinPolicy::Approval => "approval",
            JoinPolicy::Invite => "invite",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
    pub fn of(stored: &str) -> Self {
        Self::parse(stored).unwrap_or(JoinPolicy::Invite)
    }
    pub fn label(self) -> &'static str {
        match self {
            JoinPolicy::Open => "Open: anyone can join",
            JoinPolicy::Approval => "By approval: applicants write a note, moderators decide",
            JoinPolicy::Invite => "By invitation only",
        }
    }
}

/// Where a report stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportStatus {
    Open,
    Resolved,
    Dismissed,
}

impl ReportStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportStatus::Open => "open",
            ReportStatus::Resolved => "resolved",
            ReportStatus::Dismissed => "dismissed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [
            ReportStatus::Open,
            ReportStatus::Resolved,
            ReportStatus::Dismissed,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// What a new member's request becomes on arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Accept,
    Queue,
    Refuse(&'static str),
}

/// The one rule for a request to join, local or remote.
pub fn admission(
    policy: JoinPolicy,
    visibility: Visibility,
    remote: bool,
    invited: bool,
    banned: bool,
) -> Admission {
    if banned {
        return Admission::Refuse("you are banned from this group");
    }
    if remote && !visibility.federates() {
        return Admission::Refuse("this group is for this instance's members only");
    }
    if invited {
        return Admission::Accept;
    }
    match policy {
        JoinPolicy::Open => Admission::Accept,
        JoinPolicy::Approval => Admission::Queue,
        JoinPolicy::Invite => Admission::Refuse("this group takes members by invitation only"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_is_most_private() {
        for v in Visibility::ALL {
            assert_eq!(Visibility::parse(v.as_str()), Some(v));
        }
        for p in JoinPolicy::ALL {
            assert_eq!(JoinPolicy::parse(p.as_str()), Some(p));
        }
        assert_eq!(Visibility::of("garbage"), Visibility::Local);
        assert_eq!(JoinPolicy::of("garbage"), JoinPolicy::Invite);
        assert_eq!(ReportStatus::parse("open"), Some(ReportStatus::Open));
    }

    #[test]
    fn admission_follows_policy_ban_and_locality() {
        use Admission::*;
        let (o, a, i) = (JoinPolicy::Open, JoinPolicy::Approval, JoinPolicy::Invite);
        let (p, m, l) = (Visibility::Public, Visibility::Members, Visibility::Local);
        assert_eq!(admission(o, p, true, false, false), Accept);
        assert_eq!(admission(a, m, true, false, false), Queue);
        assert!(matches!(admission(i, m, true, false, false), Refuse(_)));
        assert_eq!(admission(i, m, true, true, false), Accept);
        assert!(matches!(admission(o, p, false, true, true), Refuse(_)));
        assert!(matches!(admission(o, l, true, true, false), Refuse(_)));
        assert_eq!(admission(o, l, false, false, false), Accept);
    }
}
