/**
 * Reading the rich details of a failed call.
 *
 * The bridge puts a `google.rpc.Status` into the `grpc-status-details-bin` trailer of every error: an
 * ErrorInfo always (its `reason` is the stable cause to branch on), a BadRequest naming the wrong fields of
 * an INVALID_ARGUMENT, and a RetryInfo saying when to try again after UNAVAILABLE or RESOURCE_EXHAUSTED.
 * @grpc/grpc-js hands the trailer over as raw bytes; the types generated from googleapis' google/rpc/*.proto
 * (src/gen-rpc) decode it.
 */
import { type ServiceError, status } from "@grpc/grpc-js";

import type { Any } from "./gen-rpc/google/protobuf/any.js";
import { BadRequest, ErrorInfo, RetryInfo } from "./gen-rpc/google/rpc/error_details.js";
import { Status } from "./gen-rpc/google/rpc/status.js";

/** ErrorInfo.domain of every error the bridge reports. */
export const ERROR_DOMAIN = "bridge.xpander.ai";

const DETAILS_TRAILER = "grpc-status-details-bin";

/** A failed call's status with its typed details, as plain data. */
export interface RichError {
  /** Canonical code name, e.g. `NOT_FOUND`. */
  code: string;
  message: string;
  errorInfo?: ErrorInfo;
  fieldViolations: { field: string; description: string }[];
  retryDelaySeconds?: number;
  /** Type URLs of details this client has no type for. */
  undecoded: string[];
}

/** True for the errors @grpc/grpc-js reports for a call (they carry a status code). */
export function isServiceError(error: unknown): error is ServiceError {
  return error instanceof Error && typeof (error as Partial<ServiceError>).code === "number";
}

/** The canonical name of a gRPC status code, spelled as google/rpc/code.proto does (e.g. `NOT_FOUND`). */
export function codeName(code: status): string {
  return status[code] ?? `CODE_${code}`;
}

/** Decodes the status details of `error`; without the trailer only code and message are known. */
export function readRichError(error: ServiceError): RichError {
  const rich: RichError = { code: codeName(error.code), message: error.details, fieldViolations: [], undecoded: [] };
  const [raw] = error.metadata?.get(DETAILS_TRAILER) ?? [];
  if (!Buffer.isBuffer(raw)) {
    return rich;
  }
  const details = Status.decode(raw);
  rich.message = details.message;
  for (const any of details.details) {
    readDetail(any, rich);
  }
  return rich;
}

function readDetail(any: Any, rich: RichError): void {
  // Any.typeUrl is `type.googleapis.com/<full message name>`; only the name after the last `/` counts.
  const typeName = any.typeUrl.slice(any.typeUrl.lastIndexOf("/") + 1);
  switch (typeName) {
    case "google.rpc.ErrorInfo":
      rich.errorInfo = ErrorInfo.decode(any.value);
      break;
    case "google.rpc.BadRequest":
      for (const violation of BadRequest.decode(any.value).fieldViolations) {
        rich.fieldViolations.push({ field: violation.field, description: violation.description });
      }
      break;
    case "google.rpc.RetryInfo": {
      const delay = RetryInfo.decode(any.value).retryDelay;
      rich.retryDelaySeconds = delay ? delay.seconds + delay.nanos / 1e9 : 0;
      break;
    }
    default:
      rich.undecoded.push(any.typeUrl);
  }
}
