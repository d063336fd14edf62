//! `query` run in a standby: asked of the leader, so every Pod answers as the leader does.
//! A leader that cannot be reached is a coded error naming it, never an answer from the copy.

use std::path::Path;
use std::time::Duration;

use kube9_store::cli::{Outcome, failure};

use super::serve::{Answer, Asked};
use super::settings::{State, Token};

/// The leader's answer to `args` (the words after `query`) when this Pod's replica stands by;
/// None when it leads or replication is off, and the query is answered here.
pub fn forwarded(dir: &Path, args: &[String]) -> Option<Outcome> {
    let state = State::read(dir)?;
    if state.leading {
        return None;
    }
    let me = &state.identity;
    let (Some(leader), Some(url)) = (&state.leader, &state.leader_url) else {
        let leader = state.leader.as_deref().unwrap_or("not elected yet");
        return Some(failure(
            1,
            "leader-unknown",
            &format!(
                "this replica ({me}) stands by and answers as the leader does, but does not know where the leader ({leader}) serves its store yet; ask again in a few seconds"
            ),
        ));
    };
    let unreachable = |why: String| {
        failure(
            1,
            "leader-unreachable",
            &format!(
                "this replica ({me}) stands by and answers as the leader does, but the leader {leader} cannot be reached at {url}: {why}; ask again in a few seconds (a new leader takes over within 15 s of a crash)"
            ),
        )
    };
    let token = match Token::read(&state.token_file) {
        Ok(token) => token,
        Err(e) => return Some(failure(1, "replication-token", &e.to_string())),
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return Some(failure(1, "runtime", &format!("cannot start the async runtime: {e}"))),
    };
    let asked = Asked { args: args.to_vec() };
    let answer = runtime.block_on(async {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| e.to_string())?;
        let response = http
            .post(format!("{url}/replica/query"))
            .header(reqwest::header::AUTHORIZATION, token.header())
            .json(&asked)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            return Err(format!("it answered {}: {}", status.as_u16(), text.trim()));
        }
        response.json::<Answer>().await.map_err(|e| e.to_string())
    });
    Some(match answer {
        Ok(answer) => Outcome { code: answer.code, stdout: answer.stdout, stderr: answer.stderr },
        Err(why) => unreachable(why),
    })
}
