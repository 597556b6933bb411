// Command bridge-example is a Go client of the xpander-bridge TaskService. It walks the whole API against
// a running bridge (`make run`): create a task, follow its events, resume the stream after a deliberate
// cancel, read and list the task, stop a long-running one, and read the rich details of rejected calls.
//
// Every fact it observes is printed as one JSON line on standard output, so a person can follow the run
// and a test can check it. It exits non-zero when a call fails in a way the flow does not expect.
//
//	bridge-example -addr 127.0.0.1:50051 -api-key local-dev-key
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	bridgev1 "github.com/xpander-ai/xpander-bridge/gen/go/xpander/bridge/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// The local platform's scripted agent. Directives in the prompt steer it: `#chunks=4` splits the answer
// into four chunk events, `#delay=0.05` waits 50 ms between steps, `#never` runs until stopped.
const demoAgent = "demo-agent"

// How many events the first stream reads before it is cancelled on purpose.
const eventsBeforeCancel = 3

// The end user the example's task runs for.
const userID = "user-42"

// Calls the bridge asks to retry (RetryInfo) are tried this often at most, waiting at most maxRetryWait.
const (
	maxAttempts  = 3
	maxRetryWait = 5 * time.Second
)

func main() {
	addr := flag.String("addr", "127.0.0.1:50051", "address of the bridge")
	apiKey := flag.String("api-key", envOr("XPANDER_API_KEY", "local-dev-key"), "platform API key (the local platform accepts any)")
	timeout := flag.Duration("timeout", 30*time.Second, "deadline of each call")
	flag.Parse()

	if err := run(*addr, *apiKey, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "bridge-example:", err)
		os.Exit(1)
	}
}

func run(addr, apiKey string, timeout time.Duration) error {
	dialCtx, cancelDial := context.WithTimeout(context.Background(), timeout)
	defer cancelDial()
	// Plaintext for a bridge on loopback; use grpc.WithTransportCredentials(credentials.NewTLS(...)) otherwise.
	// (grpc-go 1.34 and later spell plaintext grpc.WithTransportCredentials(insecure.NewCredentials());
	// Debian's 1.33 predates that package.)
	conn, err := grpc.DialContext(dialCtx, addr, grpc.WithInsecure(), grpc.WithBlock())
	if err != nil {
		return fmt.Errorf("connect to %s: %w", addr, err)
	}
	defer conn.Close()
	client := bridgev1.NewTaskServiceClient(conn)

	// Credentials travel as call metadata on every call.
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-api-key", apiKey)
	ex := &example{client: client, ctx: ctx, timeout: timeout}

	task, err := ex.createTask()
	if err != nil {
		return err
	}
	last, err := ex.streamUntilCancelled(task.GetId())
	if err != nil {
		return err
	}
	if err := ex.resumeStream(task.GetId(), last); err != nil {
		return err
	}
	if err := ex.getAndList(task.GetId()); err != nil {
		return err
	}
	if err := ex.listUserTasks(task.GetId()); err != nil {
		return err
	}
	if err := ex.stopLongRunningTask(); err != nil {
		return err
	}
	return ex.showRichErrors()
}

type example struct {
	client  bridgev1.TaskServiceClient
	ctx     context.Context
	timeout time.Duration
}

// call returns a context with the per-call deadline; every call should have one.
func (ex *example) call() (context.Context, context.CancelFunc) {
	return context.WithTimeout(ex.ctx, ex.timeout)
}

// createTask starts a task with user details, a JSON output schema and an MCP server, events streamable.
func (ex *example) createTask() (*bridgev1.Task, error) {
	schema, err := structpb.NewStruct(map[string]interface{}{
		"type": "object",
		"properties": map[string]interface{}{
			"summary": map[string]interface{}{"type": "string"},
			"words":   map[string]interface{}{"type": "integer"},
		},
		"required": []interface{}{"summary", "words"},
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := ex.call()
	defer cancel()
	resp, err := ex.client.CreateTask(ctx, &bridgev1.CreateTaskRequest{
		AgentId: demoAgent,
		Prompt:  "Summarise the release notes in one line #chunks=4 #delay=0.05",
		UserDetails: &bridgev1.User{
			Id:        proto.String(userID),
			Email:     "ada@example.com",
			FirstName: proto.String("Ada"),
			LastName:  proto.String("Lovelace"),
			Timezone:  proto.String("Europe/London"),
		},
		OutputFormat: bridgev1.OutputFormat_OUTPUT_FORMAT_JSON,
		OutputSchema: schema,
		McpServers: []*bridgev1.MCPServerDetails{{
			Name:      proto.String("docs"),
			Type:      bridgev1.MCPServerType_MCP_SERVER_TYPE_REMOTE,
			Url:       proto.String("https://mcp.example.com/mcp"),
			Transport: bridgev1.MCPServerTransport_MCP_SERVER_TRANSPORT_STREAMABLE_HTTP,
			AuthType:  bridgev1.MCPServerAuthType_MCP_SERVER_AUTH_TYPE_NONE,
		}},
		EventsStreaming: true,
	})
	if err != nil {
		return nil, fmt.Errorf("CreateTask: %w", err)
	}
	task := resp.GetTask()
	mcpNames := []string{}
	for _, server := range task.GetMcpServers() {
		mcpNames = append(mcpNames, server.GetName())
	}
	emit(fact{
		"step":          "created",
		"task_id":       task.GetId(),
		"status":        task.GetStatus().String(),
		"output_format": task.GetOutputFormat().String(),
		"user_email":    task.GetInput().GetUser().GetEmail(),
		"mcp_servers":   mcpNames,
	})
	return task, nil
}

// streamUntilCancelled reads the first events, then cancels the call on purpose, as a client that loses
// its connection or restarts would. Cancelling the stream never stops the task. It returns the sequence
// of the last event received, the point to resume from.
func (ex *example) streamUntilCancelled(taskID string) (uint64, error) {
	ctx, cancel := ex.call()
	defer cancel()
	stream, err := ex.client.StreamEvents(ctx, &bridgev1.StreamEventsRequest{TaskId: taskID})
	if err != nil {
		return 0, fmt.Errorf("StreamEvents: %w", err)
	}
	var last uint64
	for received := 0; received < eventsBeforeCancel; received++ {
		resp, err := stream.Recv()
		if err != nil {
			return 0, fmt.Errorf("StreamEvents before the cancel: %w", err)
		}
		last = resp.GetEvent().GetSequence()
		emitEvent("first", resp.GetEvent())
	}
	cancel()
	// The next read reports the cancellation; events already in flight may still arrive first and are
	// dropped here: the resumed stream delivers everything after `last` again.
	for {
		if _, err := stream.Recv(); err != nil {
			emit(fact{"step": "cancelled", "after_sequence": last, "code": codeName(status.Code(err))})
			return last, nil
		}
	}
}

// resumeStream follows the task from just after `after` until TASK_FINISHED ends the stream.
func (ex *example) resumeStream(taskID string, after uint64) error {
	ctx, cancel := ex.call()
	defer cancel()
	stream, err := ex.client.StreamEvents(ctx, &bridgev1.StreamEventsRequest{
		TaskId:        taskID,
		AfterSequence: proto.Uint64(after),
	})
	if err != nil {
		return fmt.Errorf("StreamEvents after %d: %w", after, err)
	}
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			emit(fact{"step": "stream_end", "code": "OK"})
			return nil
		}
		if err != nil {
			return fmt.Errorf("StreamEvents after %d: %w", after, err)
		}
		emitEvent("resumed", resp.GetEvent())
	}
}

func (ex *example) getAndList(taskID string) error {
	ctx, cancel := ex.call()
	defer cancel()
	got, err := ex.client.GetTask(ctx, &bridgev1.GetTaskRequest{TaskId: taskID})
	if err != nil {
		return fmt.Errorf("GetTask: %w", err)
	}
	task := got.GetTask()
	emit(fact{"step": "get", "task_id": task.GetId(), "status": task.GetStatus().String(), "result": task.GetResult()})

	// Newest first: the task just created is on the first page.
	listed, err := ex.client.ListTasks(ctx, &bridgev1.ListTasksRequest{AgentId: demoAgent, PageSize: 20})
	if err != nil {
		return fmt.Errorf("ListTasks: %w", err)
	}
	found := false
	for _, t := range listed.GetTasks() {
		found = found || t.GetId() == taskID
	}
	emit(fact{
		"step":            "list",
		"found":           found,
		"count":           len(listed.GetTasks()),
		"total_size":      listed.GetTotalSize(),
		"next_page_token": listed.GetNextPageToken() != "",
	})
	return nil
}

// listUserTasks lists the end user's tasks, honouring RetryInfo: when the platform is overloaded or rate
// limits (UNAVAILABLE, RESOURCE_EXHAUSTED) the bridge says how long to wait before trying again.
func (ex *example) listUserTasks(taskID string) error {
	for attempt := 1; ; attempt++ {
		ctx, cancel := ex.call()
		listed, err := ex.client.ListTasks(ctx, &bridgev1.ListTasksRequest{UserId: userID})
		cancel()
		if err == nil {
			found := false
			for _, t := range listed.GetTasks() {
				found = found || t.GetId() == taskID
			}
			emit(fact{"step": "user_tasks", "found": found, "attempts": attempt})
			return nil
		}
		rich := readRichError(err)
		if rich.RetryDelay == nil || attempt == maxAttempts {
			return fmt.Errorf("ListTasks for %s: %w", userID, err)
		}
		emit(rich.fact("user_tasks_retry"))
		wait := *rich.RetryDelay
		if wait > maxRetryWait {
			wait = maxRetryWait
		}
		time.Sleep(wait)
	}
}

// stopLongRunningTask starts a task that runs until stopped (`#never`) and stops it.
func (ex *example) stopLongRunningTask() error {
	ctx, cancel := ex.call()
	defer cancel()
	created, err := ex.client.CreateTask(ctx, &bridgev1.CreateTaskRequest{AgentId: demoAgent, Prompt: "Watch the queue #never"})
	if err != nil {
		return fmt.Errorf("CreateTask (#never): %w", err)
	}
	stopped, err := ex.client.StopTask(ctx, &bridgev1.StopTaskRequest{TaskId: created.GetTask().GetId()})
	if err != nil {
		return fmt.Errorf("StopTask: %w", err)
	}
	emit(fact{"step": "stopped", "task_id": stopped.GetTask().GetId(), "status": stopped.GetTask().GetStatus().String()})
	return nil
}

// showRichErrors makes two calls the bridge rejects and prints what their status details say.
func (ex *example) showRichErrors() error {
	ctx, cancel := ex.call()
	defer cancel()
	_, err := ex.client.GetTask(ctx, &bridgev1.GetTaskRequest{TaskId: "no-such-task"})
	if err == nil {
		return errors.New("GetTask of an unknown task succeeded")
	}
	emit(readRichError(err).fact("unknown_task"))

	_, err = ex.client.CreateTask(ctx, &bridgev1.CreateTaskRequest{
		AgentId:  demoAgent,
		Prompt:   "Read this file",
		FileUrls: []string{"not a url"},
	})
	if err == nil {
		return errors.New("CreateTask with a malformed file URL succeeded")
	}
	emit(readRichError(err).fact("bad_file_url"))
	return nil
}

func emitEvent(pass string, event *bridgev1.TaskEvent) {
	f := fact{"step": "event", "pass": pass, "sequence": event.GetSequence(), "type": event.GetType().String()}
	switch payload := event.GetPayload().(type) {
	case *bridgev1.TaskEvent_Chunk:
		f["chunk"] = payload.Chunk
	case *bridgev1.TaskEvent_Task:
		f["status"] = payload.Task.GetStatus().String()
		if event.GetType() == bridgev1.TaskEventType_TASK_EVENT_TYPE_TASK_FINISHED {
			f["result"] = payload.Task.GetResult()
		}
	case *bridgev1.TaskEvent_ToolCall:
		f["tool"] = payload.ToolCall.GetToolName()
	}
	emit(f)
}

type fact map[string]interface{}

// emit prints one fact as a JSON line (keys sorted, so lines are stable).
func emit(f fact) {
	line, err := json.Marshal(f)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(line))
}

func envOr(name, fallback string) string {
	if value := os.Getenv(name); value != "" {
		return value
	}
	return fallback
}
