// cereader: reads agentlancer's events from a real Kafka broker with the CloudEvents Go SDK
// (github.com/cloudevents/sdk-go/v2 and its Kafka protocol binding for sarama) and checks each
// message against the wire contract (docs/events, CloudEvents 1.0 Kafka binding, structured mode).
//
//	cereader watermarks -bootstrap HOST:PORT [-topics a,b]                 > offsets.json
//	cereader read -bootstrap HOST:PORT -schemas DIR [-topics a,b] [-from offsets.json] [-idle 3s]
//
// `watermarks` prints the next offset of every partition ({"topic":{"0":n,…}}); `read` reads every
// message from those offsets (or from the oldest) up to the end of each partition as it is when
// the read starts, and prints a JSON summary: messages, events per type and topic, failures with
// their reasons. Exit 1 on any failure or when no event was read, 2 on a usage or broker error.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	kafka_sarama "github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
)

var defaultTopics = "agentlancer.agents.v1,agentlancer.services.v1,agentlancer.threads.v1," +
	"agentlancer.offers.v1,agentlancer.contracts.v1,agentlancer.jobs.v1"

const structuredContentType = "application/cloudevents+json"

// The extensions of the contract: name -> required. Any other extension is only type-checked.
var contractExtensions = map[string]bool{"seq": true, "audience": true, "requestid": true, "traceparent": false}

// A failure's kind: its reason with quoted values and lists elided.
var kindRe = regexp.MustCompile(`"[^"]*"|\{[^}]*\}|\b(?:agt|thr|svc|off|ctr|key)_[a-z0-9]{16,}\b|docs/events/[a-z_.]+\.schema\.json`)

var traceparentRe = regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$`)

type failure struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Type      string `json:"type,omitempty"`
	Reason    string `json:"reason"`
}

type summary struct {
	SDK          string                    `json:"sdk"`
	Messages     int                       `json:"messages"`
	Events       int                       `json:"events"`
	Types        map[string]int            `json:"types"`
	DistinctType int                       `json:"distinct_types"`
	Topics       map[string]int            `json:"topics"`
	Extensions   map[string]int            `json:"extensions"`
	FailureCount int                       `json:"failure_count"`
	FailureKinds map[string]int            `json:"failure_kinds"`
	Failures     []failure                 `json:"failures"`
	Partitions   map[string]map[string]int `json:"partitions_read"`
	Seconds      float64                   `json:"seconds"`
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	switch os.Args[1] {
	case "watermarks":
		fs := flag.NewFlagSet("watermarks", flag.ExitOnError)
		bootstrap := fs.String("bootstrap", "", "Kafka bootstrap servers")
		topics := fs.String("topics", defaultTopics, "comma-separated topics")
		_ = fs.Parse(os.Args[2:])
		if *bootstrap == "" {
			usage()
		}
		client := newClient(*bootstrap)
		defer client.Close()
		out := map[string]map[string]int64{}
		for _, t := range splitTopics(*topics) {
			ends, err := partitionOffsets(client, t, sarama.OffsetNewest)
			if err != nil {
				fatal("watermarks of %s: %v", t, err)
			}
			out[t] = map[string]int64{}
			for p, o := range ends {
				out[t][strconv.Itoa(int(p))] = o
			}
		}
		_ = json.NewEncoder(os.Stdout).Encode(out)
	case "read":
		fs := flag.NewFlagSet("read", flag.ExitOnError)
		bootstrap := fs.String("bootstrap", "", "Kafka bootstrap servers")
		topics := fs.String("topics", defaultTopics, "comma-separated topics")
		schemas := fs.String("schemas", "", "folder of <type>.schema.json (docs/events)")
		from := fs.String("from", "", "JSON file of start offsets (from `watermarks`); default: the oldest")
		idle := fs.Duration("idle", 3*time.Second, "a partition is done when nothing more arrives for this long")
		_ = fs.Parse(os.Args[2:])
		if *bootstrap == "" || *schemas == "" {
			usage()
		}
		s := read(*bootstrap, splitTopics(*topics), *schemas, *from, *idle)
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(s)
		if s.FailureCount > 0 || s.Events == 0 {
			os.Exit(1)
		}
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: cereader watermarks -bootstrap HOST:PORT [-topics a,b]\n"+
		"       cereader read -bootstrap HOST:PORT -schemas DIR [-topics a,b] [-from offsets.json] [-idle 3s]")
	os.Exit(2)
}

func fatal(f string, a ...any) {
	fmt.Fprintf(os.Stderr, "cereader: "+f+"\n", a...)
	os.Exit(2)
}

func splitTopics(s string) []string {
	var out []string
	for _, t := range strings.Split(s, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

func newConfig() *sarama.Config {
	c := sarama.NewConfig()
	c.ClientID = "cloudevents-sdk-go-check"
	c.Version = sarama.V3_0_0_0
	c.Consumer.IsolationLevel = sarama.ReadCommitted // what the services' consumers see
	c.Consumer.Return.Errors = true
	c.Metadata.Retry.Max = 10
	return c
}

func newClient(bootstrap string) sarama.Client {
	client, err := sarama.NewClient(strings.Split(bootstrap, ","), newConfig())
	if err != nil {
		fatal("connect to %s: %v", bootstrap, err)
	}
	return client
}

func partitionOffsets(client sarama.Client, topic string, which int64) (map[int32]int64, error) {
	parts, err := client.Partitions(topic)
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	for _, p := range parts {
		o, err := client.GetOffset(topic, p, which)
		if err != nil {
			return nil, err
		}
		out[p] = o
	}
	return out, nil
}

// schemaIDs maps each event type to the $id of docs/events/<type>.schema.json ("" when it has none).
func schemaIDs(dir string) map[string]string {
	files, err := filepath.Glob(filepath.Join(dir, "*.schema.json"))
	if err != nil || len(files) == 0 {
		fatal("no *.schema.json in %s", dir)
	}
	out := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			fatal("%v", err)
		}
		var doc struct {
			ID string `json:"$id"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			fatal("%s: %v", f, err)
		}
		out[strings.TrimSuffix(filepath.Base(f), ".schema.json")] = doc.ID
	}
	return out
}

func read(bootstrap string, topics []string, schemaDir, fromFile string, idle time.Duration) summary {
	start := time.Now()
	ids := schemaIDs(schemaDir)
	var from map[string]map[string]int64
	if fromFile != "" {
		b, err := os.ReadFile(fromFile)
		if err != nil {
			fatal("%v", err)
		}
		if err := json.Unmarshal(b, &from); err != nil {
			fatal("%s: %v", fromFile, err)
		}
	}
	client := newClient(bootstrap)
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		fatal("consumer: %v", err)
	}
	defer consumer.Close()

	s := summary{SDK: "github.com/cloudevents/sdk-go/v2 + protocol/kafka_sarama/v2", Types: map[string]int{},
		Topics: map[string]int{}, Extensions: map[string]int{}, Failures: []failure{}, FailureKinds: map[string]int{},
		Partitions: map[string]map[string]int{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, topic := range topics {
		ends, err := partitionOffsets(client, topic, sarama.OffsetNewest)
		if err != nil {
			fatal("end offsets of %s: %v", topic, err)
		}
		oldest, err := partitionOffsets(client, topic, sarama.OffsetOldest)
		if err != nil {
			fatal("oldest offsets of %s: %v", topic, err)
		}
		s.Partitions[topic] = map[string]int{}
		for p, end := range ends {
			begin := oldest[p]
			if f, ok := from[topic][strconv.Itoa(int(p))]; ok && f > begin {
				begin = f
			}
			if begin >= end {
				continue
			}
			pc, err := consumer.ConsumePartition(topic, p, begin)
			if err != nil {
				fatal("consume %s/%d from %d: %v", topic, p, begin, err)
			}
			wg.Add(1)
			go func(topic string, p int32, end int64, pc sarama.PartitionConsumer) {
				defer wg.Done()
				defer pc.Close()
				n := 0
				timer := time.NewTimer(idle)
				defer timer.Stop()
				for {
					select {
					case m := <-pc.Messages():
						reasons, typ, exts := check(m, ids)
						mu.Lock()
						n++
						s.Messages++
						s.Topics[topic]++
						if typ != "" {
							s.Types[typ]++
						}
						for _, e := range exts {
							s.Extensions[e]++
						}
						if len(reasons) == 0 {
							s.Events++
						}
						for _, r := range reasons {
							s.FailureCount++
							s.FailureKinds[kindRe.ReplaceAllString(r, "…")]++
							if len(s.Failures) < 60 {
								s.Failures = append(s.Failures, failure{topic, p, m.Offset, typ, r})
							}
						}
						mu.Unlock()
						if m.Offset+1 >= end {
							mu.Lock()
							s.Partitions[topic][strconv.Itoa(int(p))] = n
							mu.Unlock()
							return
						}
						timer.Reset(idle)
					case e := <-pc.Errors():
						mu.Lock()
						s.FailureCount++
						s.FailureKinds["consumer error"]++
						if len(s.Failures) < 60 {
							s.Failures = append(s.Failures, failure{Topic: topic, Partition: p, Offset: -1, Reason: "consumer: " + e.Error()})
						}
						mu.Unlock()
					case <-timer.C:
						// Transaction markers and aborted records take offsets but are never delivered.
						mu.Lock()
						s.Partitions[topic][strconv.Itoa(int(p))] = n
						mu.Unlock()
						return
					}
				}
			}(topic, p, end, pc)
		}
	}
	wg.Wait()
	s.DistinctType = len(s.Types)
	s.Seconds = math.Round(time.Since(start).Seconds()*100) / 100
	sort.SliceStable(s.Failures, func(i, j int) bool {
		a, b := s.Failures[i], s.Failures[j]
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		if a.Partition != b.Partition {
			return a.Partition < b.Partition
		}
		return a.Offset < b.Offset
	})
	return s
}

// check converts one Kafka message with the SDK's Kafka binding and checks it against the
// contract. It returns the reasons it fails (none: it passes), its type and its extension names.
func check(m *sarama.ConsumerMessage, ids map[string]string) (reasons []string, typ string, exts []string) {
	fail := func(f string, a ...any) { reasons = append(reasons, fmt.Sprintf(f, a...)) }

	ct := ""
	for _, h := range m.Headers {
		if strings.EqualFold(string(h.Key), "content-type") {
			ct = string(h.Value)
		}
	}
	var msg binding.Message = kafka_sarama.NewMessageFromConsumerMessage(m)
	if enc := msg.ReadEncoding(); enc != binding.EncodingStructured {
		fail("not structured mode: the SDK reads encoding %s (content-type header %q, want %q)", enc, ct, structuredContentType)
		if enc == binding.EncodingUnknown {
			// Read the value as a structured event all the same, to report what else is wrong.
			msg = kafka_sarama.NewMessage(m.Value, structuredContentType, map[string][]byte{})
		}
	} else if mt := strings.TrimSpace(strings.SplitN(ct, ";", 2)[0]); mt != structuredContentType {
		fail("content-type header %q, want %q", ct, structuredContentType)
	}
	ev, err := binding.ToEvent(context.Background(), msg)
	if err != nil {
		fail("the SDK cannot convert the message: %s", strings.TrimSpace(err.Error()))
		typ = rawType(m.Value)
		return
	}
	typ = ev.Type()
	if err := ev.Validate(); err != nil {
		fail("event.Validate: %s", strings.TrimSpace(err.Error()))
	}
	if ev.SpecVersion() != event.CloudEventsVersionV1 {
		fail("specversion %q, want 1.0", ev.SpecVersion())
	}
	if ev.Source() == "" {
		fail("no source")
	}
	if ev.Time().IsZero() {
		fail("no time")
	}
	if ev.Subject() == "" {
		fail("no subject")
	}
	if string(m.Key) != ev.Subject() {
		fail("message key %q != subject %q", string(m.Key), ev.Subject())
	}
	if ev.DataContentType() != "application/json" {
		fail("datacontenttype %q, want application/json", ev.DataContentType())
	}
	if ev.DataSchema() == "" {
		fail("no dataschema")
	}
	if id, ok := ids[typ]; !ok {
		fail("no docs/events/%s.schema.json", typ)
	} else if id == "" {
		fail("docs/events/%s.schema.json has no $id", typ)
	} else if ev.DataSchema() != "" && ev.DataSchema() != id {
		fail("dataschema %q != $id %q of docs/events/%s.schema.json", ev.DataSchema(), id, typ)
	}
	if d := bytes.TrimSpace(ev.Data()); len(d) == 0 || d[0] != '{' || !json.Valid(d) {
		fail("data is not a JSON object")
	}

	// Extensions: as the SDK holds them (CloudEvents types only), and as they are on the wire.
	raw := rawExtensions(m.Value)
	for name, v := range ev.Extensions() {
		exts = append(exts, name)
		if _, err := types.Validate(v); err != nil {
			fail("extension %s: %v", name, err)
		}
		switch v.(type) {
		case bool, int32, string, []byte, types.URI, types.URIRef, types.Timestamp:
		default:
			fail("extension %s holds %T, not a CloudEvents type", name, v)
		}
		if r, ok := raw[name]; ok {
			if why := wireTypeProblem(r); why != "" {
				fail("extension %s: %s", name, why)
			}
		}
	}
	ext := ev.Extensions()
	for name, required := range contractExtensions {
		v, ok := ext[name]
		if !ok {
			if required {
				fail("extension %s missing", name)
			}
			continue
		}
		switch name {
		case "seq":
			if _, ok := v.(int32); !ok {
				fail("seq is %T, want an Integer", v)
			}
			if r := raw["seq"]; r != nil {
				var n json.Number
				if json.Unmarshal(r, &n) != nil {
					fail("seq is not a JSON number on the wire: %s", r)
				}
			}
		case "audience":
			a, ok := v.(string)
			if !ok {
				fail("audience is %T, want a String (space-separated agent ids)", v)
			} else if strings.TrimSpace(a) != a || strings.Contains(a, "  ") {
				fail("audience %q is not single-space separated", a)
			}
		case "requestid":
			if _, ok := v.(string); !ok {
				fail("requestid is %T, want a String", v)
			}
		case "traceparent":
			if t, ok := v.(string); !ok || !traceparentRe.MatchString(t) {
				fail("traceparent %v is not a W3C traceparent", v)
			}
		}
	}
	sort.Strings(exts)
	return
}

// rawType reads "type" from the JSON value when the SDK could not convert the message.
func rawType(value []byte) string {
	var doc struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(value, &doc) != nil {
		return ""
	}
	return doc.Type
}

var contextAttributes = map[string]bool{"specversion": true, "id": true, "type": true, "source": true,
	"subject": true, "time": true, "datacontenttype": true, "dataschema": true, "data": true, "data_base64": true}

// rawExtensions returns the extension members of a structured JSON envelope as they are on the wire.
func rawExtensions(value []byte) map[string]json.RawMessage {
	var doc map[string]json.RawMessage
	if json.Unmarshal(value, &doc) != nil {
		return nil
	}
	out := map[string]json.RawMessage{}
	for k, v := range doc {
		if !contextAttributes[k] {
			out[k] = v
		}
	}
	return out
}

// wireTypeProblem: a JSON extension value must be a string, a boolean or an integer in the
// CloudEvents Integer range (the JSON event format's mapping of the type system).
func wireTypeProblem(r json.RawMessage) string {
	dec := json.NewDecoder(bytes.NewReader(r))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return err.Error()
	}
	switch x := v.(type) {
	case nil, string, bool:
		return ""
	case json.Number:
		i, err := strconv.ParseInt(string(x), 10, 64)
		if err != nil {
			return fmt.Sprintf("%s is not an integer", x)
		}
		if i < math.MinInt32 || i > math.MaxInt32 {
			return fmt.Sprintf("%d is outside the CloudEvents Integer range", i)
		}
		return ""
	default:
		return fmt.Sprintf("%s on the wire (%s), not a CloudEvents type", jsonKind(v), r)
	}
}

func jsonKind(v any) string {
	switch v.(type) {
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
