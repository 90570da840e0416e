// Pins which model file a request names: selectors, test-model mode, configured paths, refused requests, and settings validation.

import assert from "node:assert/strict";
import { tmpdir } from "node:os";
import { join, resolve, sep } from "node:path";
import { describe, test } from "node:test";
import { loadSettings, SettingsError, type ModelRole, type Settings } from "../src/config/settings.js";
import { ProtocolError } from "../src/protocol/errors.js";
import { DEFAULT_MODEL, MODEL_REGISTRY, SIZE_TO_MODEL } from "../src/models/registry.js";
import { resolveModel, selectorFor, type ModelRequest } from "../src/models/resolve.js";
import { testModelPath } from "../src/models/test-models/index.js";

const CACHE_DIR = join(tmpdir(), "steadytext-resolution-cache");
const ROLES: readonly ModelRole[] = ["generation", "embedding", "reranking"];

function settings(env: Record<string, string> = {}): Settings {
  return loadSettings({ STEADYTEXT_CACHE_DIR: CACHE_DIR, ...env });
}

/** The invalid_params message a request is refused with. */
function refusal(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof ProtocolError, `threw ${String(error)}`);
    assert.equal(error.code, "invalid_params");
    return error.message;
  }
  assert.fail("the request was accepted");
}

function registryFile(name: string) {
  const entry = MODEL_REGISTRY[name];
  assert.ok(entry, `registry has no ${name}`);
  return entry;
}

describe("selectors", () => {
  test("no model fields means the role's default", () => {
    for (const role of ROLES) assert.equal(selectorFor(role, {}), `${role}:default`);
  });

  test("blank strings count as not given", () => {
    assert.equal(selectorFor("generation", { model: "  ", model_repo: "", model_filename: null }), "generation:default");
  });

  test("size, name and repo selectors, with repo winning over name and name over size", () => {
    assert.equal(selectorFor("generation", { size: "large" }), "generation:size:large");
    assert.equal(selectorFor("generation", { model: "gemma-3n-4b", size: "small" }), "generation:name:gemma-3n-4b");
    assert.equal(
      selectorFor("embedding", { model: "qwen3-embedding", model_repo: "acme/models", model_filename: "m.gguf" }),
      "embedding:repo:acme/models/m.gguf",
    );
  });
});

describe("resolveModel with downloads from the hub", () => {
  const s = settings();

  test("the default of each role is its registry default, in the model dir, with a download source", () => {
    for (const role of ROLES) {
      const entry = registryFile(DEFAULT_MODEL[role]);
      const resolved = resolveModel(s, role, {});
      assert.equal(resolved.selector, `${role}:default`);
      assert.equal(resolved.role, role);
      assert.equal(resolved.name, entry.filename);
      assert.equal(resolved.path, join(s.modelDir, entry.filename));
      assert.deepEqual(resolved.source, { repo: entry.repo, filename: entry.filename });
      assert.equal(resolved.downloadable, true);
    }
  });

  test("the model dir defaults to <cache dir>/models", () => {
    assert.equal(s.modelDir, join(resolve(CACHE_DIR), "models"));
  });

  test("size small and large pick the registry's generation models", () => {
    for (const size of ["small", "large"] as const) {
      const entry = registryFile(SIZE_TO_MODEL[size]);
      const resolved = resolveModel(s, "generation", { size });
      assert.equal(resolved.selector, `generation:size:${size}`);
      assert.deepEqual(resolved.source, { repo: entry.repo, filename: entry.filename });
    }
    assert.notEqual(resolveModel(s, "generation", { size: "small" }).path, resolveModel(s, "generation", { size: "large" }).path);
  });

  test("STEADYTEXT_GENERATION_SIZE=large changes the default generation model", () => {
    const large = registryFile(SIZE_TO_MODEL.large);
    assert.equal(resolveModel(settings({ STEADYTEXT_GENERATION_SIZE: "large" }), "generation", {}).name, large.filename);
  });

  test("a registry name resolves to its file", () => {
    for (const [name, entry] of Object.entries(MODEL_REGISTRY)) {
      const resolved = resolveModel(s, entry.role, { model: name });
      assert.equal(resolved.selector, `${entry.role}:name:${name}`);
      assert.deepEqual(resolved.source, { repo: entry.repo, filename: entry.filename });
      assert.equal(resolved.downloadable, true);
    }
  });

  test("a repo and file name resolve to that file in the model dir, which a request may not download", () => {
    const resolved = resolveModel(s, "embedding", { model_repo: "acme/tiny-GGUF", model_filename: "tiny.Q4_K_M.gguf" });
    assert.equal(resolved.selector, "embedding:repo:acme/tiny-GGUF/tiny.Q4_K_M.gguf");
    assert.equal(resolved.path, join(s.modelDir, "tiny.Q4_K_M.gguf"));
    assert.deepEqual(resolved.source, { repo: "acme/tiny-GGUF", filename: "tiny.Q4_K_M.gguf" });
    assert.equal(resolved.downloadable, false);
  });

  test("REPO/FILENAME overrides replace the default only", () => {
    const o = settings({ STEADYTEXT_RERANKING_MODEL_REPO: "me/rr", STEADYTEXT_RERANKING_MODEL_FILENAME: "rr.gguf" });
    assert.deepEqual(resolveModel(o, "reranking", {}).source, { repo: "me/rr", filename: "rr.gguf" });
    assert.equal(resolveModel(o, "reranking", {}).downloadable, true, "an administrator's override may be downloaded");
    assert.equal(resolveModel(o, "reranking", { model: "qwen3-reranker-4b" }).name, registryFile("qwen3-reranker-4b").filename);
    const half = settings({ STEADYTEXT_RERANKING_MODEL_REPO: "me/rr" });
    assert.equal(resolveModel(half, "reranking", {}).name, registryFile(DEFAULT_MODEL.reranking).filename);
  });
});

describe("configured model paths", () => {
  test("STEADYTEXT_GENERATION_MODEL_PATH wins for the default, without a download source", () => {
    const s = settings({ STEADYTEXT_GENERATION_MODEL_PATH: "relative/dir/my-model.gguf" });
    const resolved = resolveModel(s, "generation", {});
    assert.equal(resolved.path, resolve("relative/dir/my-model.gguf"));
    assert.equal(resolved.name, "my-model.gguf");
    assert.equal(resolved.source, undefined);
  });

  test("it wins over test-model mode too, but only for the default selector and its own role", () => {
    const s = settings({ STEADYTEXT_GENERATION_MODEL_PATH: "/models/gen.gguf", STEADYTEXT_TEST_MODELS: "1" });
    assert.equal(resolveModel(s, "generation", {}).path, "/models/gen.gguf");
    assert.equal(resolveModel(s, "generation", { size: "large" }).path, testModelPath(s.testModelDir, "generation"));
    assert.equal(resolveModel(s, "embedding", {}).path, testModelPath(s.testModelDir, "embedding"));
  });
});

describe("test-model mode", () => {
  const s = settings({ STEADYTEXT_TEST_MODELS: "true" });
  const requests: ModelRequest[] = [
    {},
    { size: "large" },
    { size: "small" },
    { model_repo: "acme/other", model_filename: "other.gguf" },
  ];

  test("every selector of a role maps to that role's test model, keeping its own selector", () => {
    for (const role of ROLES) {
      for (const request of requests) {
        const resolved = resolveModel(s, role, request);
        assert.equal(resolved.path, testModelPath(join(resolve(CACHE_DIR), "test-models"), role));
        assert.equal(resolved.selector, selectorFor(role, request));
        assert.equal(resolved.source, undefined, "a test model is never downloaded");
      }
    }
    assert.equal(resolveModel(s, "generation", { model: "gemma-3n-2b" }).path, testModelPath(s.testModelDir, "generation"));
  });

  test("an unknown name is still an error", () => {
    assert.match(refusal(() => resolveModel(s, "generation", { model: "gpt-5" })), /Unknown generation model 'gpt-5'/);
  });

  test("flag values: 0 and false leave the mode off", () => {
    for (const value of ["0", "false", "no", "off"]) assert.equal(settings({ STEADYTEXT_TEST_MODELS: value }).testModels, false);
    for (const value of ["1", "TRUE", " yes ", "on"]) assert.equal(settings({ STEADYTEXT_TEST_MODELS: value }).testModels, true);
  });
});

describe("refused requests", () => {
  const s = settings();

  test("model_repo without model_filename, or the reverse", () => {
    assert.match(refusal(() => selectorFor("generation", { model_repo: "a/b" })), /must be given together/);
    assert.match(refusal(() => selectorFor("generation", { model_filename: "x.gguf" })), /must be given together/);
  });

  test("a remote model 'a:b' needs unsafe_mode, and with it is a remote selector that never names a local file", () => {
    assert.match(refusal(() => selectorFor("generation", { model: "openai:gpt-4o" })), /require unsafe_mode=TRUE/);
    assert.match(refusal(() => selectorFor("generation", { model: "openai:gpt-4o", unsafe_mode: false })), /require unsafe_mode=TRUE/);
    assert.equal(selectorFor("generation", { model: "openai:gpt-4o", unsafe_mode: true }), "generation:remote:openai:gpt-4o");
    assert.match(refusal(() => resolveModel(loadSettings({ STEADYTEXT_CACHE_DIR: "/tmp/x" }), "generation", { model: "openai:gpt-4o", unsafe_mode: true })), /is a remote model/);
  });

  test("unsafe_mode without a model is refused, as in the original", () => {
    assert.match(refusal(() => selectorFor("generation", { unsafe_mode: true })), /unsafe_mode=TRUE requires a model parameter/);
    assert.equal(selectorFor("generation", { unsafe_mode: true, model: "gemma-3n-2b" }), "generation:name:gemma-3n-2b");
  });

  test("the original's sizes select a model each; mini is SteadyText's CI model", () => {
    for (const size of ["mini", "small", "medium", "large"] as const) {
      assert.equal(selectorFor("generation", { size }), `generation:size:${size}`);
    }
    assert.equal(resolveModel({ ...s, testModels: false }, "generation", { size: "mini" }).name, "gemma-3-270m-it-qat-Q4_0.gguf");
  });

  test("an unknown name, or a name of another role, lists the known models", () => {
    const message = refusal(() => resolveModel(s, "generation", { model: "no-such-model" }));
    assert.match(message, /Unknown generation model 'no-such-model'/);
    for (const [name, entry] of Object.entries(MODEL_REGISTRY)) {
      if (entry.role === "generation") assert.ok(message.includes(name), `${name} not listed`);
    }
    assert.match(refusal(() => resolveModel(s, "generation", { model: "qwen3-embedding" })), /Unknown generation model/);
  });

  test("a model_filename that is a path, climbs up, or is not a .gguf file", () => {
    for (const filename of ["../evil.gguf", "..", "sub/evil.gguf", "/etc/evil.gguf", "..\\evil.gguf", ".hidden.gguf", "model.bin", "model.gguf/x", " x.gguf"]) {
      assert.match(
        refusal(() => resolveModel(s, "generation", { model_repo: "acme/models", model_filename: filename })),
        /must be a plain \.gguf file name/,
        filename,
      );
    }
  });

  test("a model_repo that is not owner/name", () => {
    for (const repo of ["noslash", "a/b/c", "../x", "a/..", "-a/b", "a/", "/b", "a b/c", "a/b?x=1"]) {
      assert.match(
        refusal(() => resolveModel(s, "generation", { model_repo: repo, model_filename: "m.gguf" })),
        /is not of the form owner\/name/,
        repo,
      );
    }
  });

  test("whatever a repo request names, its file stays directly inside the model dir", () => {
    for (const filename of ["a.gguf", "a..b.gguf", "A-1_x.Q8_0.gguf"]) {
      const resolved = resolveModel(s, "generation", { model_repo: "o/n", model_filename: filename });
      assert.equal(resolved.path, `${s.modelDir}${sep}${filename}`);
    }
  });
});

describe("loadSettings", () => {
  /** The SettingsError message for an environment, asserting it names the variable. */
  function settingsError(variable: string, value: string): string {
    try {
      settings({ [variable]: value });
    } catch (error) {
      assert.ok(error instanceof SettingsError, `threw ${String(error)}`);
      assert.ok(error.message.startsWith(`${variable}:`), error.message);
      return error.message;
    }
    assert.fail(`${variable}=${value} was accepted`);
  }

  test("a bad port is an error naming STEADYTEXT_DAEMON_PORT", () => {
    for (const port of ["0", "65536", "-1", "abc", "55.5"]) settingsError("STEADYTEXT_DAEMON_PORT", port);
    assert.equal(settings({ STEADYTEXT_DAEMON_PORT: "6000" }).endpoint, "tcp://127.0.0.1:6000");
  });

  test("an endpoint that is not tcp:// or ipc:// is an error", () => {
    for (const endpoint of ["http://127.0.0.1:5557", "127.0.0.1:5557", "tcp://", "udp://x:1"]) {
      assert.match(settingsError("STEADYTEXT_DAEMON_ENDPOINT", endpoint), /tcp:\/\/ or ipc:\/\//);
    }
    assert.equal(settings({ STEADYTEXT_DAEMON_ENDPOINT: "ipc:///tmp/st.sock" }).endpoint, "ipc:///tmp/st.sock");
  });

  test("a non-numeric or non-positive cache capacity is an error naming the variable", () => {
    settingsError("STEADYTEXT_GENERATION_CACHE_CAPACITY", "lots");
    settingsError("STEADYTEXT_EMBEDDING_CACHE_CAPACITY", "0");
    settingsError("STEADYTEXT_RERANKING_CACHE_CAPACITY", "2.5");
    settingsError("STEADYTEXT_EMBEDDING_CACHE_MAX_SIZE_MB", "-3");
    assert.equal(settings({ STEADYTEXT_GENERATION_CACHE_CAPACITY: "10" }).cacheLimits.generation.capacity, 10);
  });

  test("other bad values name their variable too", () => {
    settingsError("STEADYTEXT_GENERATION_SIZE", "huge");
    settingsError("STEADYTEXT_HF_ENDPOINT", "not a url");
    settingsError("STEADYTEXT_DAEMON_ID", "has space");
    settingsError("STEADYTEXT_LOG_LEVEL", "loud");
  });

  test("defaults: port 5557 on 127.0.0.1, downloads allowed, test models off", () => {
    const s = settings();
    assert.equal(s.endpoint, "tcp://127.0.0.1:5557");
    assert.equal(s.allowModelDownloads, true);
    assert.equal(s.testModels, false);
    assert.equal(s.hfEndpoint, "https://huggingface.co");
  });

  test("unrelated variables are ignored", () => {
    assert.doesNotThrow(() => settings({ PATH: "/bin", STEADYTEXT_UNKNOWN_THING: "x" }));
  });
});
