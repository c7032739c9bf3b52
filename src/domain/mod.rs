//! Plain types and rules, no I/O: names and handles, kinds and states, who may
//! do what, content rules, retry timing. Local and remote paths both call these.

pub mod content;
pub mod group;
pub mod handle;
pub mod markup;
pub mod policy;
pub mod retry;
pub mod rules;
pub mod topics;

/// What an actor is. Remote `Service` bots count as people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorKind {
    Person,
    Group,
    Application,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::Person => "person",
            ActorKind::Group => "group",
            ActorKind::Application => "application",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "person" => Some(ActorKind::Person),
            "group" => Some(ActorKind::Group),
            "application" => Some(ActorKind::Application),
            _ => None,
        }
    }

    /// From an ActivityStreams actor type.
    pub fn from_as_type(t: &str) -> Option<Self> {
        match t {
            "Person" | "Service" => Some(ActorKind::Person),
            "Group" => Some(ActorKind::Group),
            "Application" => Some(ActorKind::Application),
            _ => None,
        }
    }

    pub fn as_type(self) -> &'static str {
        match self {
            ActorKind::Person => "Person",
            ActorKind::Group => "Group",
            ActorKind::Application => "Application",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowState {
    Pending,
    Accepted,
}

impl FollowState {
    pub fn as_str(self) -> &'static str {
        match self {
            FollowState::Pending => "pending",
            FollowState::Accepted => "accepted",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(FollowState::Pending),
            "accepted" => Some(FollowState::Accepted),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
    /// Not sent, and never will be: the federation policy refuses the inbox.
    Cancelled,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Cancelled => "cancelled",
        }
    }
}

/// Who may create an account, chosen by the admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationMode {
    /// Anyone may sign up and use the account at once.
    Open,
    /// Applicants write a short note; an admin approves or refuses.
    Approval,
    /// Only with an invitation link made by an admin.
    Invite,
    /// No new accounts.
    Closed,
}

impl RegistrationMode {
    pub const ALL: [RegistrationMode; 4] = [
        RegistrationMode::Open,
        RegistrationMode::Approval,
        RegistrationMode::Invite,
        RegistrationMode::Closed,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            RegistrationMode::Open => "open",
            RegistrationMode::Approval => "approval",
            RegistrationMode::Invite => "invite",
            RegistrationMode::Closed => "closed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }
    /// How the admin pages describe it.
    pub fn label(self) -> &'static str {
        match self {
            RegistrationMode::Open => "Open: anyone can sign up",
            RegistrationMode::Approval => "By approval: applicants write a note, an admin decides",
            RegistrationMode::Invite => "By invitation link only",
            RegistrationMode::Closed => "Closed: no new accounts",
        }
    }
}

/// Where a local account stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    Active,
    /// Signed up in approval mode; cannot sign in until approved.
    Pending,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Pending => "pending",
        }
    }
}

/// A local person's role in a local group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupRole {
    Owner,
    Moderator,
}

impl GroupRole {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupRole::Owner => "owner",
            GroupRole::Moderator => "moderator",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "owner" => Some(GroupRole::Owner),
            "moderator" => Some(GroupRole::Moderator),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_bots_are_people() {
        for k in [ActorKind::Person, ActorKind::Group, ActorKind::Application] {
            assert_eq!(ActorKind::parse(k.as_str()), Some(k));
            assert_eq!(ActorKind::from_as_type(k.as_type()), Some(k));
        }
        assert_eq!(ActorKind::from_as_type("Service"), Some(ActorKind::Person));
        assert_eq!(ActorKind::from_as_type("Organization"), None);
        assert_eq!(FollowState::parse("accepted"), Some(FollowState::Accepted));
        assert_eq!(FollowState::parse("nope"), None);
        for m in RegistrationMode::ALL {
            assert_eq!(RegistrationMode::parse(m.as_str()), Some(m));
        }
        assert_eq!(RegistrationMode::parse("Open"), None);
        assert_eq!(GroupRole::parse("owner"), Some(GroupRole::Owner));
    }
}
