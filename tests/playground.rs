//! The web playground in a real browser: headless Chromium, driven through
//! chromedriver (Debian's `chromium` and `chromium-driver`, which `.ci/run`
//! installs), against `seer serve`. Types a message, sends it, and sees the
//! reply arrive as streamed text; asks for pictures and sees them rendered.

mod common;

use fantoccini::{ClientBuilder, Locator};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A child process killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts chromedriver on a free port; returns it and its URL, or `None`
/// (with a note) where it is not installed.
fn chromedriver() -> Option<(Process, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = match Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            eprintln!(
                "skipped: chromedriver does not run ({e}); Debian: apt-get install chromium chromium-driver (.ci/run does)"
            );
            return None;
        }
    };
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Some((Process(child), url))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_playground_streams_a_chat_reply_and_shows_pictures() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // A small character model with room for a chat turn (128 tokens); a
    // character model has no end-of-text token, so a reply always has text.
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus.txt");
    let text = std::fs::read_to_string(root.join("data/tinyshakespeare.txt")).unwrap();
    std::fs::write(&corpus, &text[..50_000]).unwrap();
    let data = dir.path().join("data");
    let model = dir.path().join("model");
    for args in [
        vec![
            "prepare",
            "--tokenizer",
            "char",
            corpus.to_str().unwrap(),
            "-o",
            data.to_str().unwrap(),
        ],
        vec![
            "train",
            "--data",
            data.to_str().unwrap(),
            "--preset",
            "tiny",
            "--block-size",
            "128",
            "--max-iters",
            "10",
            "-o",
            model.to_str().unwrap(),
            "--quiet",
        ],
    ] {
        let out = common::run::seer(&args);
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    let image_model = root.join("assets/shapes-model");
    let server = common::server::start(&[
        "--model",
        model.to_str().unwrap(),
        "--image-model",
        image_model.to_str().unwrap(),
    ]);
    let Some((_driver, driver_url)) = chromedriver() else {
        return;
    };
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
        }),
    );
    let browser = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver_url)
        .await
        .expect("a WebDriver session in headless Chromium");
    let result = drive(&browser, &server.base).await;
    browser.close().await.unwrap();
    result.unwrap();
}

/// The checks, apart so that the browser is closed whatever happens.
async fn drive(browser: &fantoccini::Client, url: &str) -> Result<(), String> {
    let fail = |e: fantoccini::error::CmdError| e.to_string();
    // Says which step failed, with what the page showed.
    let page = || async {
        browser
            .execute("return document.querySelector('main').innerText;", vec![])
            .await
            .map(|v| v.to_string())
            .unwrap_or_default()
    };
    browser.goto(url).await.map_err(fail)?;
    let wait = || browser.wait().at_most(Duration::from_secs(60));
    // The page has listed the models.
    wait()
        .for_element(Locator::XPath(
            "//span[@id='models'][contains(., 'text: ')]",
        ))
        .await
        .map_err(fail)?;

    // Chat: type, send, and watch the reply stream in.
    let input = browser
        .find(Locator::Id("chat-input"))
        .await
        .map_err(fail)?;
    input.send_keys("ROMEO:").await.map_err(fail)?;
    browser
        .execute(
            "document.getElementById('max_tokens').value = '60'; return null;",
            vec![],
        )
        .await
        .map_err(fail)?;
    browser
        .find(Locator::Id("chat-send"))
        .await
        .map_err(fail)?
        .click()
        .await
        .map_err(fail)?;
    if let Err(e) = wait()
        .for_element(Locator::XPath(
            "//div[@id='chat-status'][contains(., 'finished')]",
        ))
        .await
    {
        return Err(format!(
            "the reply did not finish ({e}); the page: {}",
            page().await
        ));
    }
    let user = browser
        .find(Locator::Css(".message.user"))
        .await
        .map_err(fail)?
        .text()
        .await
        .map_err(fail)?;
    if user != "ROMEO:" {
        return Err(format!("the user's message shows as {user:?}"));
    }
    let reply = browser
        .find(Locator::Css(".message.assistant"))
        .await
        .map_err(fail)?;
    let text = reply.text().await.map_err(fail)?;
    let chunks: usize = reply
        .attr("data-chunks")
        .await
        .map_err(fail)?
        .unwrap_or_default()
        .parse()
        .unwrap_or(0);
    if text.trim().is_empty() || chunks < 2 {
        return Err(format!(
            "the reply was not streamed: {chunks} chunks, text {text:?}"
        ));
    }

    // Image: ask for two pictures and see them rendered.
    browser
        .execute(
            "document.getElementById('image-n').value = '2';\
             document.getElementById('image-steps').value = '5';\
             document.getElementById('image-prompt').value = 'a red circle';\
             return null;",
            vec![],
        )
        .await
        .map_err(fail)?;
    browser
        .find(Locator::Id("image-send"))
        .await
        .map_err(fail)?
        .click()
        .await
        .map_err(fail)?;
    if let Err(e) = wait().for_element(Locator::Css("#image-results img")).await {
        return Err(format!("no pictures ({e}); the page: {}", page().await));
    }
    let sizes = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];\
             const imgs = [...document.querySelectorAll('#image-results img')];\
             Promise.all(imgs.map((i) => i.decode()))\
               .then(() => done(imgs.map((i) => [i.naturalWidth, i.naturalHeight])));",
            vec![],
        )
        .await
        .map_err(fail)?;
    if sizes != serde_json::json!([[32, 32], [32, 32]]) {
        return Err(format!("pictures rendered at {sizes}"));
    }
    Ok(())
}
