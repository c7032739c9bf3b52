//! Plain types and rules, no I/O: names and handles, kinds and states, who may
//! do what, content rules, retry timing. Local and remote paths both call these.

pub mod content;
pub mod handle;
pub mod markup;
pub mod retry;
pub mod rules;

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
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
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
    }
}
