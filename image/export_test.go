package image

// SlotPartition returns the byte offset and size of slot s's partition in img (for the
// update tests, which compare the slots' bytes).
func SlotPartition(img, s string) (int64, int64, error) {
	return partition(img, map[string]string{"a": LabelSlotA, "b": LabelSlotB}[s])
}
