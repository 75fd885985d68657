package executionindex

import (
	"github.com/agentwatch/agentwatch/projections/rowcodec"
)

// itemCodec keeps items compactly: what the execution's ARN implies (its state
// machine's ARN and its name) is left out, times are milliseconds.
type itemCodec struct{}

const itemCodecV1 = 1

// Encode appends the item.
func (itemCodec) Encode(b []byte, doc any) []byte {
	it := doc.(*Item)
	w := rowcodec.Writer{B: b}
	w.Byte(itemCodecV1)
	w.Str(it.ExecutionArn)
	f := rowcodec.DerivedFlags(it.ExecutionArn, it.StateMachineArn, it.ExecutionName, it.AgentName)
	w.Byte(f)
	w.StrUnless(f, rowcodec.DerivedSM, it.StateMachineArn)
	w.StrUnless(f, rowcodec.DerivedName, it.ExecutionName)
	w.StrUnless(f, rowcodec.DerivedAgent, it.AgentName)
	w.Str(it.Status)
	w.TimeStr(it.StartDate)
	w.TimeStr(it.IndexedAt)
	w.TimeStr(it.StopDate)
	if it.DurationSeconds == nil {
		w.Byte(0)
	} else {
		w.Byte(1)
		w.Float(*it.DurationSeconds)
	}
	w.Str(it.SessionID)
	w.Str(it.Error)
	w.Str(it.Cause)
	w.Uvarint(uint64(it.RedriveCount))
	w.OptBool(it.InputIncluded)
	w.OptBool(it.OutputIncluded)
	w.TimeStr(it.LastEventAt)
	w.Str(it.Outcome)
	w.Str(it.Stage)
	w.Str(it.ErrorMessage)
	if it.ErrorMessageTruncated {
		w.Byte(1)
	} else {
		w.Byte(0)
	}
	w.Varint(it.Rank)
	return w.B
}

// Decode fills an *Item.
func (itemCodec) Decode(b []byte, doc any) error {
	it := doc.(*Item)
	r := rowcodec.NewReader(b)
	if r.Byte() != itemCodecV1 {
		return rowcodec.ErrMalformed
	}
	*it = Item{ExecutionArn: r.Str()}
	r.Derived(it.ExecutionArn, r.Byte(), &it.StateMachineArn, &it.ExecutionName, &it.AgentName)
	it.Status = r.Str()
	it.StartDate, it.IndexedAt, it.StopDate = r.TimeStr(), r.TimeStr(), r.TimeStr()
	switch r.Byte() {
	case 0:
	case 1:
		d := r.Float()
		it.DurationSeconds = &d
	default:
		r.Fail()
	}
	it.SessionID, it.Error, it.Cause = r.Str(), r.Str(), r.Str()
	it.RedriveCount = int(r.Uvarint())
	it.InputIncluded, it.OutputIncluded = r.OptBool(), r.OptBool()
	it.LastEventAt = r.TimeStr()
	it.Outcome, it.Stage, it.ErrorMessage = r.Str(), r.Str(), r.Str()
	it.ErrorMessageTruncated = r.Byte() == 1
	it.Rank = r.Varint()
	return r.Done()
}
