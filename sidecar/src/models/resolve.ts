// Which GGUF file answers a request. A request names a model by a selector
// (default, size, registry name, or hub repo + file); the selector string is
// also computed in SQL (_steadytext_model_selector) so both sides agree on it.
// No selector can name an arbitrary local path: only files in the model
// directory, the paths an administrator configured, or the test models.

import { basename, join } from "node:path";
import type { ModelRole, Settings } from "../config/settings.js";
import { invalidParams } from "../protocol/errors.js";
import type { GenerationSize } from "../protocol/messages.js";
import { testModelPath } from "./test-models/index.js";
import { DEFAULT_MODEL, MODEL_REGISTRY, SIZE_TO_MODEL, type RegistryEntry } from "./registry.js";

export interface ModelRequest {
  model?: string | null | undefined;
  model_repo?: string | null | undefined;
  model_filename?: string | null | undefined;
  size?: GenerationSize | null | undefined;
  unsafe_mode?: boolean | null | undefined;
}

export interface ResolvedModel {
  role: ModelRole;
  /** Canonical selector, e.g. "generation:default" or "generation:size:large". */
  selector: string;
  /** A short human name (file name) for logs, status and the cache's model_name column. */
  name: string;
  path: string;
  /** Where the file comes from on the hub. */
  source?: { repo: string; filename: string };
  /**
   * Whether a missing file may be downloaded: yes for registry models and
   * administrator-configured defaults, no for a repo/file a request names
   * (a SQL caller must not make the daemon fetch and load arbitrary files).
   */
  downloadable?: boolean;
}

const REPO_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/;
const FILENAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*\.gguf$/;

const blankToNull = (v: string | null | undefined): string | null => (v && v.trim() !== "" ? v : null);

/** The canonical selector of a request; throws invalid_params for requests that cannot name a model. */
export function selectorFor(role: ModelRole, request: ModelRequest): string {
  const model = blankToNull(request.model);
  const repo = blankToNull(request.model_repo);
  const filename = blankToNull(request.model_filename);
  if ((repo === null) !== (filename === null)) {
    throw invalidParams("model_repo and model_filename must be given together");
  }
  if (request.unsafe_mode && model === null && repo === null) {
    throw invalidParams("unsafe_mode=TRUE requires a model parameter");
  }
  if (model?.includes(":")) {
    // provider:model is answered by that provider (sidecar/src/remote), never by a local file.
    if (request.unsafe_mode) return `${role}:remote:${model}`;
    throw invalidParams("Remote models (containing ':' ) require unsafe_mode=TRUE");
  }
  if (repo !== null && filename !== null) {
    if (!REPO_PATTERN.test(repo)) throw invalidParams(`model_repo '${repo}' is not of the form owner/name`);
    if (!FILENAME_PATTERN.test(filename)) throw invalidParams(`model_filename '${filename}' must be a plain .gguf file name`);
    return `${role}:repo:${repo}/${filename}`;
  }
  if (model !== null) return `${role}:name:${model}`;
  if (request.size) return `${role}:size:${request.size}`;
  return `${role}:default`;
}

function fromHub(role: ModelRole, selector: string, settings: Settings, repo: string, filename: string, downloadable = true): ResolvedModel {
  return { role, selector, name: filename, path: join(settings.modelDir, filename), source: { repo, filename }, downloadable };
}

function registryEntry(role: ModelRole, name: string): RegistryEntry {
  const entry = MODEL_REGISTRY[name];
  if (!entry || entry.role !== role) {
    const known = Object.entries(MODEL_REGISTRY)
      .filter(([, e]) => e.role === role)
      .map(([n]) => n);
    throw invalidParams(`Unknown ${role} model '${name}'; known models: ${known.join(", ")}`);
  }
  return entry;
}

/** Resolve a request to a model file (which may still have to be downloaded). */
export function resolveModel(settings: Settings, role: ModelRole, request: ModelRequest): ResolvedModel {
  const selector = selectorFor(role, request);
  const [, kind, ...rest] = selector.split(":");
  const value = rest.join(":");

  if (kind === "remote") throw invalidParams(`'${value}' is a remote model: its provider answers it, not a local file`);
  if (kind === "name") registryEntry(role, value); // unknown names are an error in every mode
  const configuredPath = settings.modelPaths[role];
  if (kind === "default" && configuredPath) {
    return { role, selector, name: basename(configuredPath), path: configuredPath };
  }
  if (settings.testModels) {
    const path = testModelPath(settings.testModelDir, role);
    return { role, selector, name: basename(path), path };
  }
  switch (kind) {
    case "repo": {
      const slash = value.lastIndexOf("/");
      return fromHub(role, selector, settings, value.slice(0, slash), value.slice(slash + 1), false);
    }
    case "name": {
      const entry = registryEntry(role, value);
      return fromHub(role, selector, settings, entry.repo, entry.filename);
    }
    case "size": {
      const entry = registryEntry(role, SIZE_TO_MODEL[value as GenerationSize]);
      return fromHub(role, selector, settings, entry.repo, entry.filename);
    }
    default: {
      const override = settings.modelOverrides[role];
      if (override) return fromHub(role, selector, settings, override.repo, override.filename);
      const name = role === "generation" ? SIZE_TO_MODEL[settings.generationSize] : DEFAULT_MODEL[role];
      const entry = registryEntry(role, name);
      return fromHub(role, selector, settings, entry.repo, entry.filename);
    }
  }
}
