package main

import (
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// errorDomain is the ErrorInfo.domain of every error the bridge reports.
const errorDomain = "bridge.xpander.ai"

// describeError reads a failed call's status: its code and message, and the typed details the bridge
// sends in the `grpc-status-details-bin` trailer (a google.rpc.Status). status.FromError decodes that
// trailer; Details() unpacks each google.protobuf.Any into its registered Go type, which is why the
// errdetails package has to be linked in.
func describeError(err error) map[string]interface{} {
	st := status.Convert(err)
	out := map[string]interface{}{"code": codeName(st.Code()), "message": st.Message()}
	for _, detail := range st.Details() {
		switch d := detail.(type) {
		case *errdetails.ErrorInfo:
			// Always present: `reason` is the stable, machine-readable cause to branch on.
			out["error_info"] = map[string]interface{}{
				"reason":   d.GetReason(),
				"domain":   d.GetDomain(),
				"metadata": d.GetMetadata(),
				"ours":     d.GetDomain() == errorDomain,
			}
		case *errdetails.BadRequest:
			// INVALID_ARGUMENT: which request fields are wrong, and why.
			violations := []map[string]string{}
			for _, v := range d.GetFieldViolations() {
				violations = append(violations, map[string]string{"field": v.GetField(), "description": v.GetDescription()})
			}
			out["field_violations"] = violations
		case *errdetails.RetryInfo:
			// UNAVAILABLE and RESOURCE_EXHAUSTED: how long to wait before trying again.
			delay := d.GetRetryDelay()
			out["retry_delay_seconds"] = float64(delay.GetSeconds()) + float64(delay.GetNanos())/1e9
		case error:
			// A detail whose type is not linked into this program.
			out["undecoded_detail"] = d.Error()
		}
	}
	return out
}

// codeName is the canonical name of a gRPC code as google/rpc/code.proto spells it (e.g. NOT_FOUND),
// the same in every language.
func codeName(c codes.Code) string {
	if name, ok := code.Code_name[int32(c)]; ok {
		return name
	}
	return c.String()
}
