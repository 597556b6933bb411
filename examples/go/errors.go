package main

import (
	"time"

	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// errorDomain is the ErrorInfo.domain of every error the bridge reports.
const errorDomain = "bridge.xpander.ai"

// richError is a failed call's status with the typed details the bridge sends.
type richError struct {
	Code    codes.Code
	Message string
	// Always present: Reason is the stable, machine-readable cause to branch on.
	ErrorInfo *errdetails.ErrorInfo
	// INVALID_ARGUMENT: which request fields are wrong, and why.
	FieldViolations []*errdetails.BadRequest_FieldViolation
	// UNAVAILABLE and RESOURCE_EXHAUSTED: how long to wait before trying again; nil when not sent.
	RetryDelay *time.Duration
	// Details whose type is not linked into this program.
	Undecoded []string
}

// readRichError reads the status of a failed call. The bridge sends a google.rpc.Status in the
// `grpc-status-details-bin` trailer; status.Convert decodes it and Details() unpacks each
// google.protobuf.Any into its registered Go type, which is why the errdetails package is imported here.
func readRichError(err error) richError {
	st := status.Convert(err)
	rich := richError{Code: st.Code(), Message: st.Message()}
	for _, detail := range st.Details() {
		switch d := detail.(type) {
		case *errdetails.ErrorInfo:
			rich.ErrorInfo = d
		case *errdetails.BadRequest:
			rich.FieldViolations = append(rich.FieldViolations, d.GetFieldViolations()...)
		case *errdetails.RetryInfo:
			delay := time.Duration(d.GetRetryDelay().GetSeconds())*time.Second + time.Duration(d.GetRetryDelay().GetNanos())
			rich.RetryDelay = &delay
		case error:
			rich.Undecoded = append(rich.Undecoded, d.Error())
		}
	}
	return rich
}

// fact is the error as printed by the example.
func (e richError) fact(name string) fact {
	f := fact{"step": "error", "case": name, "code": codeName(e.Code), "message": e.Message}
	if info := e.ErrorInfo; info != nil {
		metadata := map[string]string{}
		for k, v := range info.GetMetadata() {
			metadata[k] = v
		}
		f["error_info"] = fact{
			"reason":   info.GetReason(),
			"domain":   info.GetDomain(),
			"metadata": metadata,
			"ours":     info.GetDomain() == errorDomain,
		}
	}
	violations := []fact{}
	for _, v := range e.FieldViolations {
		violations = append(violations, fact{"field": v.GetField(), "description": v.GetDescription()})
	}
	f["field_violations"] = violations
	if e.RetryDelay != nil {
		f["retry_delay_seconds"] = e.RetryDelay.Seconds()
	}
	if len(e.Undecoded) > 0 {
		f["undecoded"] = e.Undecoded
	}
	return f
}

// codeName is the canonical name of a gRPC code as google/rpc/code.proto spells it (e.g. NOT_FOUND),
// the same in every language.
func codeName(c codes.Code) string {
	if name, ok := code.Code_name[int32(c)]; ok {
		return name
	}
	return c.String()
}
