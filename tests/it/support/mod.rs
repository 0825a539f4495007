//! Shared helpers for integration tests: a throwaway `redis-server` on a free loopback port.

#![allow(dead_code)] // each suite uses a different subset

pub mod stack;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a fresh redis-server may take to answer PING.
const REDIS_START_DEADLINE: Duration = Duration::from_secs(10);

/// A loopback port nothing listened on a moment ago (bind to port 0, then release it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding 127.0.0.1:0 to find a free port")
}

/// A private `redis-server` (no persistence), killed when dropped. Never on 6379.
pub struct TestRedis {
    /// `redis://127.0.0.1:<port>`.
    pub url: String,
    /// The loopback port it listens on.
    pub port: u16,
    child: Child,
}

impl TestRedis {
    /// Starts redis-server on a free port and waits until it answers PING.
    pub fn start() -> TestRedis {
        // The free port can be taken between probe and spawn: try a few ports.
        for _ in 0..3 {
            let port = free_port();
            let mut child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawning redis-server (install it: apt-get install redis-server)");
            if wait_for_ping(port, &mut child) {
                return TestRedis {
                    url: format!("redis://127.0.0.1:{port}"),
                    port,
                    child,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("redis-server did not answer PING within {REDIS_START_DEADLINE:?} on three ports");
    }

    /// Stops the server now (to test what happens when Redis goes away).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn wait_for_ping(port: u16, child: &mut Child) -> bool {
    let deadline = Instant::now() + REDIS_START_DEADLINE;
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return false; // exited: most likely the port was taken
        }
        if ping(port) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn ping(port: u16) -> bool {
    let timeout = Duration::from_millis(500);
    let Ok(mut stream) = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), timeout) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    let mut reply = [0u8; 7];
    let ok = stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n";
    let _ = stream.shutdown(Shutdown::Both);
    ok
}
