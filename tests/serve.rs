//! `seer serve` end to end: the real binary on a free port, with the random
//! GPT-2 fixture as its text model and the built-in shapes model as its
//! image model; the OpenAI endpoints whole and streamed, errors in OpenAI's
//! shape, malformed-input bursts, concurrent clients and disconnects.

mod common;

use common::server::{char_model, start, Server};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn both() -> Server {
    let text = root().join("tests/fixtures/hf_gpt2");
    let image = root().join("assets/shapes-model");
    start(&[
        "--model",
        text.to_str().unwrap(),
        "--image-model",
        image.to_str().unwrap(),
        "--max-body-bytes",
        "100000",
    ])
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

/// POSTs raw bytes; returns the status and the body as JSON.
fn post_bytes(server: &Server, path: &str, body: &[u8]) -> (u16, Value) {
    let mut response = agent()
        .post(format!("{}{path}", server.base))
        .header("content-type", "application/json")
        .send(body)
        .unwrap();
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap();
    let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, value)
}

/// POSTs a body too large to be read: over a raw socket, reading the
/// answer while still sending (the server answers early and closes, as it
/// should; a client that insists on sending everything first sees a broken pipe).
fn post_huge(server: &Server, path: &str, body: &[u8]) -> (u16, Value) {
    let address = server.base.trim_start_matches("http://");
    let mut socket = std::net::TcpStream::connect(address).unwrap();
    write!(
        socket,
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    let mut reading = socket.try_clone().unwrap();
    let reader = std::thread::spawn(move || {
        let mut answer = Vec::new();
        let mut buffer = [0u8; 4096];
        while let Ok(n) = reading.read(&mut buffer) {
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buffer[..n]);
        }
        answer
    });
    for chunk in body.chunks(1 << 16) {
        if socket.write_all(chunk).is_err() {
            break;
        }
    }
    let _ = socket.shutdown(std::net::Shutdown::Write);
    let answer = String::from_utf8_lossy(&reader.join().unwrap()).into_owned();
    let status = answer[9..12].parse().unwrap();
    let json = answer.split("\r\n\r\n").nth(1).unwrap();
    (status, serde_json::from_str(json).unwrap())
}

fn post(server: &Server, path: &str, body: Value) -> (u16, Value) {
    post_bytes(server, path, body.to_string().as_bytes())
}

fn get(server: &Server, path: &str) -> (u16, Value) {
    let mut response = agent()
        .get(format!("{}{path}", server.base))
        .call()
        .unwrap();
    let status = response.status().as_u16();
    (
        status,
        serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap(),
    )
}

/// The `data:` payloads of a server-sent event stream, read to its end.
fn stream(server: &Server, path: &str, body: Value) -> Vec<String> {
    let mut response = agent()
        .post(format!("{}{path}", server.base))
        .header("content-type", "application/json")
        .send(body.to_string().as_bytes())
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    let mut text = String::new();
    response
        .body_mut()
        .as_reader()
        .read_to_string(&mut text)
        .unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("data: ").map(str::to_string))
        .collect()
}

/// Asserts an error body in OpenAI's shape, with `param` if given.
fn assert_error(status: u16, body: &Value, want_status: u16, param: Option<&str>) {
    assert_eq!(status, want_status, "{body}");
    let error = &body["error"];
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(error["type"].is_string(), "{body}");
    assert!(
        error.get("param").is_some() && error.get("code").is_some(),
        "{body}"
    );
    if let Some(param) = param {
        assert_eq!(error["param"], param, "{body}");
    }
}

#[test]
fn models_health_and_the_playground_are_served() {
    let server = both();
    let (status, models) = get(&server, "/v1/models");
    assert_eq!(status, 200);
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["hf_gpt2", "shapes-model"]);
    assert_eq!(get(&server, "/health").1["status"], "ok");
    let mut page = agent().get(&server.base).call().unwrap();
    let html = page.body_mut().read_to_string().unwrap();
    assert!(html.contains("id=\"chat-send\"") && html.contains("id=\"image-send\""));
}

#[test]
fn a_greedy_completion_matches_seer_generate() {
    let server = both();
    let request = json!({
        "model": "hf_gpt2",
        "prompt": "ROMEO:",
        "max_tokens": 12,
        "temperature": 0,
    });
    let (status, body) = post(&server, "/v1/completions", request);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "text_completion");
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "length");
    assert_eq!(body["usage"]["completion_tokens"], 12);
    let fixture = root().join("tests/fixtures/hf_gpt2");
    let tokens = common::run::seer(&[
        "inspect",
        "tokens",
        "-m",
        fixture.to_str().unwrap(),
        "ROMEO:",
        "--json",
    ]);
    let tokens: Value = serde_json::from_str(&tokens.stdout).unwrap();
    let prompt_tokens = tokens["tokens"].as_array().unwrap().len();
    assert_eq!(body["usage"]["prompt_tokens"], prompt_tokens);
    assert_eq!(body["usage"]["total_tokens"], prompt_tokens + 12);
    let cli = common::run::seer(&[
        "generate",
        "--model",
        root().join("tests/fixtures/hf_gpt2").to_str().unwrap(),
        "--temperature",
        "0",
        "--max-tokens",
        "12",
        "--json",
        "ROMEO:",
    ]);
    let cli: Value = serde_json::from_str(cli.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(choice["text"], cli["text"]);
}

#[test]
fn sampling_is_repeatable_with_a_seed_and_n_gives_several_choices() {
    let server = both();
    let request = json!({
        "model": "hf_gpt2", "prompt": ["First", "a"], "max_tokens": 8, "seed": 7, "n": 2,
        "stop": ["\n"], "top_p": 0.9, "presence_penalty": 0.5,
    });
    let (status, first) = post(&server, "/v1/completions", request.clone());
    assert_eq!(status, 200, "{first}");
    let (_, second) = post(&server, "/v1/completions", request);
    assert_eq!(first["choices"], second["choices"]);
    let choices = first["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 4);
    for (i, choice) in choices.iter().enumerate() {
        assert_eq!(choice["index"], i);
        assert!(!choice["text"].as_str().unwrap().contains('\n'));
    }
}

#[test]
fn a_streamed_chat_sends_a_role_then_text_then_the_end_and_usage() {
    let server = both();
    let events = stream(
        &server,
        "/v1/chat/completions",
        json!({
            "model": "hf_gpt2",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": [{"type": "text", "text": "Hello"}]},
            ],
            "max_tokens": 10, "seed": 1, "stream": true,
            "stream_options": {"include_usage": true},
        }),
    );
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk"));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let finishes: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"].get(0))
        .filter(|c| !c["finish_reason"].is_null())
        .collect();
    assert_eq!(finishes.len(), 1);
    let usage = &chunks.last().unwrap()["usage"];
    assert!(
        usage["completion_tokens"].as_u64().unwrap() <= 10,
        "{usage}"
    );
    assert!(usage["prompt_tokens"].as_u64().unwrap() > 3, "{usage}");
    // The streamed text is the whole reply's text.
    let streamed: String = chunks
        .iter()
        .filter_map(|c| {
            c["choices"].get(0)?["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    let (_, whole) = post(
        &server,
        "/v1/chat/completions",
        json!({
            "model": "hf_gpt2",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "Hello"},
            ],
            "max_tokens": 10, "seed": 1,
        }),
    );
    assert_eq!(
        whole["choices"][0]["message"]["content"].as_str().unwrap(),
        streamed.trim()
    );
}

#[test]
fn images_come_back_as_base64_pngs_of_the_models_size() {
    let server = both();
    let (status, body) = post(
        &server,
        "/v1/images/generations",
        json!({"prompt": "a red circle", "n": 2, "size": "32x32", "steps": 5, "seed": 3}),
    );
    assert_eq!(status, 200, "{body}");
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    use base64::Engine as _;
    for item in data {
        let png = base64::engine::general_purpose::STANDARD
            .decode(item["b64_json"].as_str().unwrap())
            .unwrap();
        let picture = image::load_from_memory(&png).unwrap();
        assert_eq!((picture.width(), picture.height()), (32, 32));
    }
    let (status, body) = post(
        &server,
        "/v1/images/generations",
        json!({"prompt": "x", "size": "1024x1024"}),
    );
    assert_error(status, &body, 400, Some("size"));
    let (status, body) = post(
        &server,
        "/v1/images/generations",
        json!({"prompt": "x", "response_format": "url"}),
    );
    assert_error(status, &body, 400, Some("response_format"));
}

#[test]
fn bad_requests_get_openai_shaped_errors_with_the_right_status() {
    let server = both();
    let ok = json!({"model": "hf_gpt2", "prompt": "a", "max_tokens": 2});
    let with = |key: &str, value: Value| {
        let mut body = ok.clone();
        body[key] = value;
        body
    };
    let (s, b) = post_bytes(&server, "/v1/completions", b"{\"model\": ");
    assert_error(s, &b, 400, None);
    let (s, b) = post(&server, "/v1/completions", with("model", json!("gpt-4")));
    assert_error(s, &b, 404, Some("model"));
    assert_eq!(b["error"]["code"], "model_not_found");
    let (s, b) = post(&server, "/v1/completions", with("temperature", json!(5)));
    assert_error(s, &b, 400, Some("temperature"));
    let (s, b) = post(&server, "/v1/completions", with("max_tokens", json!("ten")));
    assert_error(s, &b, 400, Some("max_tokens"));
    let (s, b) = post(&server, "/v1/completions", with("n", json!(1000)));
    assert_error(s, &b, 400, Some("n"));
    let (s, b) = post(&server, "/v1/completions", json!({"prompt": "a"}));
    assert_error(s, &b, 400, Some("model"));
    let long = "to be or not ".repeat(40);
    let (s, b) = post(&server, "/v1/completions", with("prompt", json!(long)));
    assert_error(s, &b, 400, Some("prompt"));
    assert_eq!(b["error"]["code"], "context_length_exceeded");
    let (s, b) = post(
        &server,
        "/v1/chat/completions",
        json!({"model": "hf_gpt2", "messages": [{"role": "user", "content": long}]}),
    );
    assert_error(s, &b, 400, Some("messages"));
    assert_eq!(b["error"]["code"], "context_length_exceeded");
    let (s, b) = post_huge(&server, "/v1/completions", &vec![b' '; 200_000]);
    assert_error(s, &b, 413, None);
    let (s, b) = post(&server, "/v1/embeddings", ok.clone());
    assert_error(s, &b, 404, None);
    let (s, b) = get(&server, "/v1/completions");
    assert_error(s, &b, 405, None);
    let (s, b) = post(
        &server,
        "/v1/chat/completions",
        json!({"model": "hf_gpt2", "messages": []}),
    );
    assert_error(s, &b, 400, Some("messages"));
    // A server without an image model says so.
    let text_only = start(&[
        "--model",
        root().join("tests/fixtures/hf_gpt2").to_str().unwrap(),
    ]);
    let (s, b) = post(&text_only, "/v1/images/generations", json!({"prompt": "x"}));
    assert_error(s, &b, 404, None);
}

#[test]
fn a_burst_of_malformed_requests_leaves_the_server_answering() {
    let server = both();
    let mut rng_state = 12345u64;
    let mut random_bytes = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                rng_state = rng_state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (rng_state >> 56) as u8
            })
            .collect()
    };
    let mut bodies: Vec<Vec<u8>> = (0..20).map(|i| random_bytes(10 + 37 * i)).collect();
    let valid = json!({"model": "hf_gpt2", "prompt": "a", "max_tokens": 3}).to_string();
    for cut in [1, 5, 12, valid.len() - 1] {
        bodies.push(valid.as_bytes()[..cut].to_vec());
    }
    for body in [
        json!({"model": "hf_gpt2", "prompt": "a", "max_tokens": 1e300}),
        json!({"model": "hf_gpt2", "prompt": "a", "max_tokens": 18446744073709551616u128 as f64}),
        json!({"model": "hf_gpt2", "prompt": "a", "temperature": -1e308}),
        json!({"model": "hf_gpt2", "prompt": "a", "seed": -1}),
        json!({"model": "hf_gpt2", "prompt": 42}),
        json!({"model": ["hf_gpt2"], "prompt": "a"}),
        json!({"model": "hf_gpt2", "prompt": "a", "stop": [1, 2]}),
        json!({"model": "hf_gpt2", "prompt": "a", "stream": "yes"}),
        json!([1, 2, 3]),
        json!(null),
    ] {
        bodies.push(body.to_string().into_bytes());
    }
    for path in [
        "/v1/completions",
        "/v1/chat/completions",
        "/v1/images/generations",
    ] {
        let (status, value) = post_huge(&server, path, &vec![b'{'; 10 << 20]);
        assert_error(status, &value, 413, None);
    }
    for body in &bodies {
        for path in [
            "/v1/completions",
            "/v1/chat/completions",
            "/v1/images/generations",
        ] {
            let (status, value) = post_bytes(&server, path, body);
            assert!((400..500).contains(&status), "{path}: {status} {value}");
            assert_error(status, &value, status, None);
        }
    }
    let (status, body) = post_bytes(&server, "/v1/completions", valid.as_bytes());
    assert_eq!(status, 200, "{body}");
}

#[test]
fn concurrent_streams_all_finish_and_a_disconnect_stops_generation() {
    // The character model runs every generation to its token limit (8 ×
    // 4,096 tokens take seconds here).
    let dir = char_model();
    let server = start(&["--model", dir.path().to_str().unwrap()]);
    let model = dir
        .path()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let base = server.base.clone();
    let clients: Vec<_> = (0..4)
        .map(|i| {
            let (base, model) = (base.clone(), model.clone());
            std::thread::spawn(move || {
                let started = Instant::now();
                let mut response = agent()
                    .post(format!("{base}/v1/completions"))
                    .send(
                        json!({"model": model, "prompt": "a", "max_tokens": 40, "seed": i, "stream": true})
                            .to_string()
                            .as_bytes(),
                    )
                    .unwrap();
                let mut text = String::new();
                response.body_mut().as_reader().read_to_string(&mut text).unwrap();
                (text.matches("\"text\"").count(), text.ends_with("data: [DONE]\n\n"), started.elapsed())
            })
        })
        .collect();
    for client in clients {
        let (chunks, done, _) = client.join().unwrap();
        assert!(done && chunks >= 40, "{chunks} chunks, done {done}");
    }

    // Long requests, streamed or not, whose client goes away mid-way.
    let address = base.trim_start_matches("http://");
    let poller = agent();
    for streamed in [true, false] {
        let mut socket = std::net::TcpStream::connect(address).unwrap();
        let body =
            json!({"model": model, "prompt": "a", "max_tokens": 4096, "n": 8, "stream": streamed})
                .to_string();
        write!(
            socket,
            "POST /v1/completions HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        // One agent for all the polls, so they share a kept-alive
        // connection instead of opening one every few milliseconds.
        let active = || {
            let mut response = poller
                .get(format!("{}/health", server.base))
                .call()
                .unwrap();
            let body: Value =
                serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
            body["text_sequences_active"].as_u64().unwrap()
        };
        let deadline = Instant::now() + Duration::from_secs(2);
        while active() == 0 {
            assert!(
                Instant::now() < deadline,
                "nothing is generating (streamed: {streamed})"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(socket);
        // Far sooner than the generation's seconds.
        let deadline = Instant::now() + Duration::from_millis(1000);
        loop {
            let left = active();
            if left == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{left} sequences still generating after the client left (streamed: {streamed})"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let (status, _) = post(
        &server,
        "/v1/completions",
        json!({"model": model, "prompt": "a", "max_tokens": 2}),
    );
    assert_eq!(status, 200);
}

#[test]
fn the_official_openai_python_client_works_unchanged() {
    // .ci/run installs the client (`pip install openai`); without Python or
    // the package this test says so and checks nothing.
    let server = both();
    let script = root().join("tests/openai_client.py");
    let Ok(out) = Command::new("python3")
        .arg(&script)
        .arg(&server.base)
        .output()
    else {
        eprintln!("skipped: python3 does not run");
        return;
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("No module named 'openai'") {
        eprintln!("skipped: the openai package is missing (pip install openai; .ci/run does)");
        return;
    }
    assert!(
        out.status.success(),
        "{}{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn an_open_model_is_served_in_its_own_chat_template() {
    let model = root().join("tests/fixtures/llama/tiny-gemma3-f32.gguf");
    let model = model.to_str().unwrap();
    let server = start(&["--model", model, "--context", "64"]);
    let (status, models) = get(&server, "/v1/models");
    assert_eq!(status, 200);
    assert_eq!(models["data"][0]["id"], "tiny-gemma3-f32.gguf");

    let request = json!({
        "model": "tiny-gemma3-f32.gguf", "prompt": "ROMEO:", "max_tokens": 6, "temperature": 0,
    });
    let (status, body) = post(&server, "/v1/completions", request);
    assert_eq!(status, 200, "{body}");
    let cli = common::run::seer(&[
        "generate",
        "-m",
        model,
        "--temperature",
        "0",
        "--max-tokens",
        "6",
        "--json",
        "ROMEO:",
    ]);
    let cli: Value = serde_json::from_str(cli.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(body["choices"][0]["text"], cli["text"]);
    assert_eq!(body["usage"]["prompt_tokens"], cli["prompt_tokens"]);

    // Gemma's turns: "<bos><start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n"
    // is 15 tokens in transformers (tests/fixtures/llama/hf_folders.json).
    let request = json!({
        "model": "tiny-gemma3-f32.gguf", "max_tokens": 4, "temperature": 0,
        "messages": [{"role": "user", "content": "hi"}],
    });
    let (status, body) = post(&server, "/v1/chat/completions", request);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["usage"]["prompt_tokens"], 15, "{body}");
    let reply = body["choices"][0]["message"]["content"].as_str().unwrap();
    let chat = common::run::seer_with_input(
        &[
            "chat",
            "-m",
            model,
            "--max-tokens",
            "4",
            "--temperature",
            "0",
        ],
        "hi\n",
    );
    assert!(
        !reply.is_empty() && chat.stdout.contains(reply),
        "the API's reply {reply:?} is seer chat's: {}",
        chat.stdout
    );
}
