//! Who leads: the one replica that may write to the cluster and talk to kube9-server. The
//! election itself (`leader`) publishes here; every writer reads it.

use tokio::sync::watch;

/// This process's part in the election.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Not decided yet, or another replica holds the Lease (its identity, when known).
    Standby { leader: Option<String> },
    /// This process holds the Lease.
    Leader,
}

/// Read side of the election: cheap to clone, one per writer.
#[derive(Clone, Debug)]
pub struct Leadership {
    /// This process's identity in the Lease (the Pod name in a cluster).
    pub identity: String,
    rx: watch::Receiver<Role>,
}

impl Leadership {
    /// A handle and the sender the election publishes through; starts as a standby.
    pub fn new(identity: String) -> (Leadership, watch::Sender<Role>) {
        let (tx, rx) = watch::channel(Role::Standby { leader: None });
        (Leadership { identity, rx }, tx)
    }

    /// Always the leader: for a process that runs alone (leader election turned off).
    pub fn alone(identity: String) -> Leadership {
        let (tx, rx) = watch::channel(Role::Leader);
        // The receiver keeps the last value once the sender is gone.
        drop(tx);
        Leadership { identity, rx }
    }

    /// Whether this process leads now.
    pub fn is_leader(&self) -> bool {
        *self.rx.borrow() == Role::Leader
    }

    /// The identity of the replica that leads, if known.
    pub fn leader(&self) -> Option<String> {
        match &*self.rx.borrow() {
            Role::Leader => Some(self.identity.clone()),
            Role::Standby { leader } => leader.clone(),
        }
    }

    /// Waits until this process leads (at once if it does); false if the election stopped first.
    pub async fn leading(&self) -> bool {
        let mut rx = self.rx.clone();
        rx.wait_for(|role| *role == Role::Leader).await.is_ok()
    }

    /// The changes, for a task that reacts to them.
    pub fn changes(&self) -> watch::Receiver<Role> {
        self.rx.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_standby_waits_until_it_leads() {
        let (leadership, tx) = Leadership::new("pod-a".into());
        assert!(!leadership.is_leader());
        tx.send(Role::Standby { leader: Some("pod-b".into()) }).unwrap();
        assert_eq!(leadership.leader().as_deref(), Some("pod-b"));
        let waiting = tokio::spawn({
            let leadership = leadership.clone();
            async move { leadership.leading().await }
        });
        tx.send(Role::Leader).unwrap();
        assert!(waiting.await.unwrap());
        assert!(leadership.is_leader());
        assert_eq!(leadership.leader().as_deref(), Some("pod-a"));
    }

    #[tokio::test]
    async fn a_process_alone_leads_at_once() {
        let alone = Leadership::alone("me".into());
        assert!(alone.is_leader());
        assert!(alone.leading().await);
    }
}
