package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Engine.IO 4 / Socket.IO 5 text packets as the notifier sends them over a
// WebSocket (one Engine.IO packet per text frame). The event path avoids
// encoding/json: at 100k+ messages/s a full decode of every ~1 KB job
// object would cost the generator most of a core.

// eioOpen is the payload of the Engine.IO OPEN packet ("0{...}").
type eioOpen struct {
	Sid          string   `json:"sid"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int64    `json:"pingInterval"`
	PingTimeout  int64    `json:"pingTimeout"`
	MaxPayload   int64    `json:"maxPayload"`
}

func parseEIOOpen(msg []byte) (eioOpen, error) {
	var o eioOpen
	if len(msg) == 0 || msg[0] != '0' {
		return o, fmt.Errorf("first packet is not Engine.IO OPEN: %q", trimForErr(msg))
	}
	if err := json.Unmarshal(msg[1:], &o); err != nil {
		return o, fmt.Errorf("Engine.IO OPEN payload: %v: %q", err, trimForErr(msg))
	}
	if o.Sid == "" {
		return o, fmt.Errorf("Engine.IO OPEN without sid: %q", trimForErr(msg))
	}
	return o, nil
}

// sioConnectPacket renders the Socket.IO CONNECT to "/" with auth:
// 40{"apiKey":"…","since":N}. since < 0 omits it.
func sioConnectPacket(apiKey string, since int64) string {
	k, _ := json.Marshal(apiKey)
	s := `40{"apiKey":` + string(k)
	if since >= 0 {
		s += `,"since":` + strconv.FormatInt(since, 10)
	}
	return s + "}"
}

// sioAckPacket renders 43<id>[true].
func sioAckPacket(b []byte, id int64) []byte {
	b = append(b, "43"...)
	b = strconv.AppendInt(b, id, 10)
	return append(b, "[true]"...)
}

// sioConnectError is the payload of a CONNECT_ERROR ("44{...}").
type sioConnectError struct {
	Message string `json:"message"`
	Data    struct {
		Code string `json:"code"`
	} `json:"data"`
}

func (e sioConnectError) String() string {
	if e.Data.Code != "" {
		return e.Message + " (code " + e.Data.Code + ")"
	}
	return e.Message
}

// sioEvent is one Socket.IO EVENT packet: 42[/nsp,][ackid]["name",arg...].
type sioEvent struct {
	Nsp     []byte // empty for "/"
	AckID   int64  // -1 without an ack id
	Name    []byte // raw (no JSON unescaping; event names are plain)
	Payload []byte // raw JSON of the first argument; nil when there is none
}

var errNotEvent = errors.New("not a Socket.IO EVENT packet")

// parseSIOEvent parses a whole Engine.IO message frame starting with "42".
// The slices alias msg.
func parseSIOEvent(msg []byte) (sioEvent, error) {
	ev := sioEvent{AckID: -1}
	if len(msg) < 3 || msg[0] != '4' || msg[1] != '2' {
		return ev, errNotEvent
	}
	i := 2
	if msg[i] == '/' {
		j := bytes.IndexByte(msg[i:], ',')
		if j < 0 {
			return ev, fmt.Errorf("EVENT namespace without ',': %q", trimForErr(msg))
		}
		ev.Nsp = msg[i : i+j]
		i += j + 1
	}
	d := i
	for d < len(msg) && msg[d] >= '0' && msg[d] <= '9' {
		d++
	}
	if d > i {
		if d-i > 18 {
			return ev, fmt.Errorf("EVENT ack id too long: %q", trimForErr(msg))
		}
		ev.AckID, _ = strconv.ParseInt(string(msg[i:d]), 10, 64)
		i = d
	}
	i = skipWS(msg, i)
	if i >= len(msg) || msg[i] != '[' {
		return ev, fmt.Errorf("EVENT payload is not an array: %q", trimForErr(msg))
	}
	i = skipWS(msg, i+1)
	if i >= len(msg) || msg[i] != '"' {
		return ev, fmt.Errorf("EVENT array does not start with a name: %q", trimForErr(msg))
	}
	end, err := skipValue(msg, i)
	if err != nil {
		return ev, fmt.Errorf("EVENT name: %v: %q", err, trimForErr(msg))
	}
	ev.Name = msg[i+1 : end-1]
	i = skipWS(msg, end)
	if i >= len(msg) {
		return ev, fmt.Errorf("EVENT array not closed: %q", trimForErr(msg))
	}
	if msg[i] == ']' {
		return ev, nil
	}
	if msg[i] != ',' {
		return ev, fmt.Errorf("EVENT array: unexpected %q: %q", msg[i], trimForErr(msg))
	}
	i = skipWS(msg, i+1)
	end, err = skipValue(msg, i)
	if err != nil {
		return ev, fmt.Errorf("EVENT argument: %v: %q", err, trimForErr(msg))
	}
	ev.Payload = msg[i:end]
	i = skipWS(msg, end)
	if i >= len(msg) || (msg[i] != ']' && msg[i] != ',') {
		return ev, fmt.Errorf("EVENT array not closed: %q", trimForErr(msg))
	}
	return ev, nil
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

var errJSONEnd = errors.New("unexpected end of JSON")

// skipValue returns the index just past the JSON value starting at b[i]. It
// checks nesting and string boundaries, not full JSON grammar.
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errJSONEnd
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				e, err := skipString(b, j)
				if err != nil {
					return 0, err
				}
				j = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, errJSONEnd
	default:
		j := i
		for j < len(b) {
			c := b[j]
			if c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r' {
				break
			}
			j++
		}
		if j == i {
			return 0, fmt.Errorf("unexpected %q", b[i])
		}
		return j, nil
	}
}

func skipString(b []byte, i int) (int, error) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return 0, errJSONEnd
}

// jsonFields calls fn with the raw key (no quotes, escapes kept) and raw
// value of every top-level member of the JSON object b, until fn returns
// false.
func jsonFields(b []byte, fn func(key, val []byte) bool) error {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return errors.New("not a JSON object")
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return errors.New("object member without a string key")
		}
		ke, err := skipString(b, i)
		if err != nil {
			return err
		}
		key := b[i+1 : ke-1]
		i = skipWS(b, ke)
		if i >= len(b) || b[i] != ':' {
			return errors.New("object member without ':'")
		}
		i = skipWS(b, i+1)
		ve, err := skipValue(b, i)
		if err != nil {
			return err
		}
		if !fn(key, b[i:ve]) {
			return nil
		}
		i = skipWS(b, ve)
		if i >= len(b) {
			return errJSONEnd
		}
		if b[i] == '}' {
			return nil
		}
		if b[i] != ',' {
			return fmt.Errorf("unexpected %q between object members", b[i])
		}
		i = skipWS(b, i+1)
	}
}

// jsonInt parses an integer JSON number, or a string holding one.
func jsonInt(v []byte) (int64, bool) {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	if len(v) == 0 {
		return 0, false
	}
	neg := false
	if v[0] == '-' {
		neg = true
		v = v[1:]
		if len(v) == 0 {
			return 0, false
		}
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' || n > (1<<62)/10 {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// eventInfo is what the benchmark needs from an event's payload.
type eventInfo struct {
	EventID  int64 // -1 if absent
	JobID    int64 // -1 if absent ("id" of the job object)
	Phase    int64 // -1 if absent
	HeadID   int64 // roomJoined: head_event_id (-1 if absent/null)
	ResumeID int64 // closing: resume_since (-1 if absent)
}

// scanEventPayload extracts event_id, the job "id" and "phase" (top level,
// or inside a top-level "job" object) and head_event_id/resume_since.
func scanEventPayload(p []byte) (eventInfo, error) { return scanEventPayloadUntil(p, false) }

// scanEventPayloadUntil is scanEventPayload; with jobOnly it stops as soon
// as the job's id and phase are known (they come first in a job object; the
// event_id is then taken from the ack id).
func scanEventPayloadUntil(p []byte, jobOnly bool) (eventInfo, error) {
	info := eventInfo{EventID: -1, JobID: -1, Phase: -1, HeadID: -1, ResumeID: -1}
	var job []byte
	err := jsonFields(p, func(k, v []byte) bool {
		switch string(k) {
		case "event_id":
			if n, ok := jsonInt(v); ok {
				info.EventID = n
			}
		case "id":
			if n, ok := jsonInt(v); ok {
				info.JobID = n
			}
		case "phase":
			if n, ok := jsonInt(v); ok {
				info.Phase = n
			}
		case "head_event_id":
			if n, ok := jsonInt(v); ok {
				info.HeadID = n
			}
		case "resume_since":
			if n, ok := jsonInt(v); ok {
				info.ResumeID = n
			}
		case "job":
			if len(v) > 0 && v[0] == '{' {
				job = v
			}
		}
		return !jobOnly || info.JobID < 0 || info.Phase < 0
	})
	if err != nil {
		return info, err
	}
	if job != nil && (info.JobID < 0 || info.Phase < 0) {
		jsonFields(job, func(k, v []byte) bool {
			switch string(k) {
			case "id":
				if n, ok := jsonInt(v); ok && info.JobID < 0 {
					info.JobID = n
				}
			case "phase":
				if n, ok := jsonInt(v); ok && info.Phase < 0 {
					info.Phase = n
				}
			}
			return true
		})
	}
	return info, nil
}

// jsonStringField returns the unescaped top-level string member key of the
// object p ("" if absent or not a string).
func jsonStringField(p []byte, key string) string {
	var out string
	jsonFields(p, func(k, v []byte) bool {
		if string(k) == key {
			var s string
			if json.Unmarshal(v, &s) == nil {
				out = s
			}
			return false
		}
		return true
	})
	return out
}
