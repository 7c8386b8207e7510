package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	"github.com/genailab/genailab/clients/cli/internal/termui"
	genailab "github.com/genailab/genailab/clients/go"
	llmv1 "github.com/genailab/genailab/gen/llm/v1"
)

type chatFlags struct {
	system      string
	maxTokens   int32
	temperature float32
	topP        float32
	seed        int64
	stop        []string
	wait        time.Duration
}

func (a *App) chatCmd() *cobra.Command {
	var f chatFlags
	cmd := &cobra.Command{
		Use:   "chat [MESSAGE...]",
		Short: "Chat with the LLM; the reply streams token by token",
		Long: `Send a message to the LLM server and print the reply as it is generated.

With a message as arguments (or on standard input when it is not a terminal) it
answers once. Without one, on a terminal, it keeps a conversation: type a message per
line, /bye or Ctrl-D to end. Model output is printed safely: control characters show
as their symbols (␛, ␍) instead of reaching the terminal.`,
		RunE: run(func(cmd *cobra.Command, args []string) error {
			c, err := a.dial(cmd)
			if err != nil {
				return err
			}
			base := &llmv1.ChatRequest{MaxTokens: f.maxTokens, Stop: f.stop, WaitTimeoutMs: f.wait.Milliseconds()}
			if changed(cmd.Flags(), "temperature") {
				base.Temperature = &f.temperature
			}
			if changed(cmd.Flags(), "top-p") {
				base.TopP = &f.topP
			}
			if changed(cmd.Flags(), "seed") {
				base.Seed = &f.seed
			}
			var history []*llmv1.ChatMessage
			if f.system != "" {
				history = genailab.Messages("system", f.system)
			}
			if len(args) > 0 || !a.StdinTTY {
				msg := strings.Join(args, " ")
				if len(args) == 0 {
					b, err := io.ReadAll(a.Stdin)
					if err != nil {
						return fmt.Errorf("read the message from standard input: %w", err)
					}
					msg = strings.TrimSpace(string(b))
				}
				if msg == "" {
					return errors.New("no message: give one as arguments or on standard input")
				}
				_, err := a.chatTurn(cmd, c, base, append(history, genailab.Messages("user", msg)...))
				return err
			}
			return a.chatLoop(cmd, c, base, history)
		}),
	}
	fl := cmd.Flags()
	fl.StringVar(&f.system, "system", "", "system prompt")
	fl.Int32Var(&f.maxTokens, "max-tokens", 0, "maximum tokens of a reply (0: the service's default)")
	fl.Float32Var(&f.temperature, "temperature", 0, "sampling temperature (default: llama-server's)")
	fl.Float32Var(&f.topP, "top-p", 0, "nucleus sampling (default: llama-server's)")
	fl.Int64Var(&f.seed, "seed", 0, "sampling seed (default: random)")
	fl.StringArrayVar(&f.stop, "stop", nil, "stop sequence; repeatable")
	fl.DurationVar(&f.wait, "wait", 0, "how long to wait for an offloaded or starting server (0: the service's default)")
	return cmd
}

// chatLoop keeps a conversation on a terminal.
func (a *App) chatLoop(cmd *cobra.Command, c *genailab.Client, base *llmv1.ChatRequest, history []*llmv1.ChatMessage) error {
	in := bufio.NewScanner(a.Stdin)
	in.Buffer(make([]byte, 64<<10), 1<<20)
	for {
		fmt.Fprint(a.Stdout, ">>> ")
		if !in.Scan() {
			fmt.Fprintln(a.Stdout)
			return in.Err()
		}
		line := strings.TrimSpace(in.Text())
		switch line {
		case "":
			continue
		case "/bye", "/exit", "/quit":
			return nil
		}
		history = append(history, genailab.Messages("user", line)...)
		reply, err := a.chatTurn(cmd, c, base, history)
		if err != nil {
			if isCanceled(err) {
				return nil
			}
			return err
		}
		history = append(history, genailab.Messages("assistant", reply)...)
	}
}

// chatTurn sends the conversation and prints the reply as it streams; it returns the reply.
func (a *App) chatTurn(cmd *cobra.Command, c *genailab.Client, base *llmv1.ChatRequest, msgs []*llmv1.ChatMessage) (string, error) {
	req := proto.Clone(base).(*llmv1.ChatRequest)
	req.Messages = msgs
	var reply strings.Builder
	done, err := c.Chat(cmd.Context(), req, func(delta string) error {
		reply.WriteString(delta)
		if a.g.json {
			return a.printJSONLine(&llmv1.ChatResponse{Event: &llmv1.ChatResponse_Delta{Delta: &llmv1.ChatDelta{Content: delta}}})
		}
		_, err := io.WriteString(a.Stdout, termui.Sanitize(delta))
		return err
	})
	if !a.g.json && reply.Len() > 0 && !strings.HasSuffix(reply.String(), "\n") {
		fmt.Fprintln(a.Stdout)
	}
	if err != nil {
		return reply.String(), a.at(genailab.ServiceLLM, err)
	}
	if a.g.json {
		return reply.String(), a.printJSONLine(&llmv1.ChatResponse{Event: &llmv1.ChatResponse_Done{Done: done}})
	}
	stats := fmt.Sprintf("[%d tokens, %.1f tokens/s, first token after %s, %s", done.GetCompletionTokens(), done.GetTokensPerSecond(),
		termui.Duration(time.Duration(done.GetTimeToFirstTokenMs())*time.Millisecond), enumName(done.GetFinishReason(), ""))
	if w := done.GetWaitedMs(); w > 0 {
		stats += fmt.Sprintf(", waited %s for the server", termui.Duration(time.Duration(w)*time.Millisecond))
	}
	fmt.Fprintln(a.Stderr, stats+"]")
	return reply.String(), nil
}
