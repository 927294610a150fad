<?php
/**
 * Upload hook, attachment meta, review actions and WP-Cron retries.
 *
 * @package Alttext
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/**
 * What the plugin keeps per attachment (post meta):
 *   _alttext_ai_generated  1 while the alt in `_wp_attachment_image_alt` is the service's text
 *   _alttext_generated_alt the text the plugin wrote (an edit to anything else makes the alt human)
 *   _alttext_needs_review  1 or 0, from the service (always 1 for a proposal nobody approved)
 *   _alttext_confidence    0..1
 *   _alttext_warnings      list of warning codes
 *   _alttext_proposal      text offered instead of (or, in propose mode, for) the alt
 *   _alttext_source        draft, human, ... (the service's `source`, or `human` after an edit)
 *   _alttext_checked       time of the last answer from the service
 *   _alttext_pending       time of the next retry (only while a retry is queued)
 *   _alttext_attempts      failed attempts so far
 *   _alttext_error         last error for this attachment (code and message)
 */
class Alttext_Attachments {

	const CRON_HOOK    = 'alttext_retry_pending';
	const MAX_ATTEMPTS = 8;
	const ALT_KEY      = '_wp_attachment_image_alt';

	/**
	 * True while the plugin itself writes the alt field (so the write is not taken for a human edit).
	 *
	 * @var bool
	 */
	private static $writing = false;

	/**
	 * Hooks.
	 */
	public static function init() {
		add_action( 'add_attachment', array( __CLASS__, 'on_upload' ) );
		add_action( self::CRON_HOOK, array( __CLASS__, 'retry_pending' ) );
		add_action( 'added_post_meta', array( __CLASS__, 'on_alt_changed' ), 10, 4 );
		add_action( 'updated_post_meta', array( __CLASS__, 'on_alt_changed' ), 10, 4 );
		add_action( 'deleted_post_meta', array( __CLASS__, 'on_alt_deleted' ), 10, 3 );
	}

	/**
	 * Unschedules the retry event (plugin deactivation).
	 */
	public static function unschedule() {
		wp_clear_scheduled_hook( self::CRON_HOOK );
		wp_clear_scheduled_hook( Alttext_Backfill::CRON_HOOK );
	}

	/**
	 * On upload: describe the image now; any service failure only queues a retry, never blocks the upload.
	 *
	 * @param int $attachment_id New attachment.
	 */
	public static function on_upload( $attachment_id ) {
		if ( ! wp_attachment_is_image( $attachment_id ) ) {
			return;
		}
		self::describe( $attachment_id );
	}

	/**
	 * Sends one attachment to the service and stores the answer, or queues a retry.
	 *
	 * @param int  $attachment_id   Attachment.
	 * @param bool $overwrite_human Replace human alt that fails the quality rules with the proposal.
	 * @return array|WP_Error The service's AltResult, or the error.
	 */
	public static function describe( $attachment_id, $overwrite_human = false ) {
		$client = Alttext_Client::from_settings();
		$result = $client->describe( get_attached_file( $attachment_id ), self::page_fields( $attachment_id ), 'wp-attachment-' . $attachment_id );
		if ( is_wp_error( $result ) ) {
			self::failed( $attachment_id, $result );
			return $result;
		}
		self::apply( $attachment_id, $result, $overwrite_human );
		return $result;
	}

	/**
	 * What the page says about the image: caption, title and the parent post, the current alt, the settings.
	 *
	 * @param int $attachment_id Attachment.
	 * @return array Form fields for POST /v1/alt-text (also used for batch items).
	 */
	public static function page_fields( $attachment_id ) {
		$post    = get_post( $attachment_id );
		$context = array();
		$file    = get_attached_file( $attachment_id );
		$title   = $post ? trim( $post->post_title ) : '';
		// WordPress titles a new upload after its file name ("IMG_2041"): that says nothing about the picture.
		if ( '' !== $title && $file && sanitize_title( $title ) !== sanitize_title( pathinfo( $file, PATHINFO_FILENAME ) ) ) {
			$context[] = $title;
		}
		if ( $post && $post->post_parent ) {
			$parent = get_post( $post->post_parent );
			if ( $parent ) {
				$context[] = trim( $parent->post_title );
				$context[] = wp_trim_words( wp_strip_all_tags( strip_shortcodes( $parent->post_content ) ), 120, '' );
			}
		}
		return array(
			'caption'         => $post ? wp_strip_all_tags( $post->post_excerpt ) : '',
			'caption_visible' => '1',
			'context'         => implode( "\n", array_filter( $context ) ),
			'lang'            => Alttext_Settings::get( 'lang' ),
			'existing_alt'    => (string) get_post_meta( $attachment_id, self::ALT_KEY, true ),
			'max_chars'       => (string) Alttext_Settings::get( 'max_chars' ),
		);
	}

	/**
	 * Stores an answer from the service. Human alt is never replaced unless $overwrite_human is set.
	 *
	 * @param int   $attachment_id   Attachment.
	 * @param array $result          AltResult.
	 * @param bool  $overwrite_human Replace human alt that fails the rules with the service's proposal.
	 */
	public static function apply( $attachment_id, array $result, $overwrite_human = false ) {
		$current  = (string) get_post_meta( $attachment_id, self::ALT_KEY, true );
		$alt      = isset( $result['alt'] ) ? (string) $result['alt'] : '';
		$proposal = isset( $result['proposal'] ) ? (string) $result['proposal'] : '';
		$review   = ! empty( $result['needs_review'] );
		$source   = isset( $result['source'] ) ? (string) $result['source'] : 'draft';
		$written  = false;

		if ( '' === trim( $current ) && '' !== $alt && 'human' !== $source ) {
			if ( 'propose' === Alttext_Settings::get( 'mode' ) ) {
				$proposal = $alt;
				$review   = true;
			} else {
				self::write_alt( $attachment_id, $alt );
				$written = true;
			}
		} elseif ( '' !== trim( $current ) && $overwrite_human && '' !== $proposal ) {
			self::write_alt( $attachment_id, $proposal );
			$written  = true;
			$proposal = '';
		}
		if ( ! $written && '' === $proposal && '' !== trim( $current ) ) {
			$source = (string) get_post_meta( $attachment_id, '_alttext_ai_generated', true ) ? 'draft' : 'human';
		}

		update_post_meta( $attachment_id, '_alttext_needs_review', $review ? 1 : 0 );
		update_post_meta( $attachment_id, '_alttext_confidence', isset( $result['confidence'] ) ? (float) $result['confidence'] : 0.0 );
		update_post_meta( $attachment_id, '_alttext_warnings', isset( $result['warnings'] ) ? array_map( 'sanitize_key', (array) $result['warnings'] ) : array() );
		update_post_meta( $attachment_id, '_alttext_source', $written ? 'draft' : sanitize_key( $source ) );
		update_post_meta( $attachment_id, '_alttext_checked', time() );
		if ( '' !== $proposal ) {
			update_post_meta( $attachment_id, '_alttext_proposal', wp_slash( $proposal ) );
		} else {
			delete_post_meta( $attachment_id, '_alttext_proposal' );
		}
		delete_post_meta( $attachment_id, '_alttext_pending' );
		delete_post_meta( $attachment_id, '_alttext_attempts' );
		delete_post_meta( $attachment_id, '_alttext_error' );
		Alttext_Settings::clear_error();
	}

	/**
	 * Writes alt text as the plugin (marked AI-generated).
	 *
	 * @param int    $attachment_id Attachment.
	 * @param string $alt           Text.
	 */
	public static function write_alt( $attachment_id, $alt ) {
		self::$writing = true;
		update_post_meta( $attachment_id, '_alttext_generated_alt', wp_slash( $alt ) );
		update_post_meta( $attachment_id, '_alttext_ai_generated', 1 );
		update_post_meta( $attachment_id, self::ALT_KEY, wp_slash( $alt ) );
		self::$writing = false;
	}

	/**
	 * An alt written by anyone but the plugin (media modal, REST `alt_text`, another plugin) is human alt.
	 *
	 * @param int    $meta_id    Meta row.
	 * @param int    $object_id  Post.
	 * @param string $meta_key   Key.
	 * @param mixed  $meta_value New value.
	 */
	public static function on_alt_changed( $meta_id, $object_id, $meta_key, $meta_value ) {
		if ( self::ALT_KEY !== $meta_key || self::$writing ) {
			return;
		}
		if ( (string) $meta_value === (string) get_post_meta( $object_id, '_alttext_generated_alt', true ) ) {
			return;
		}
		delete_post_meta( $object_id, '_alttext_ai_generated' );
		delete_post_meta( $object_id, '_alttext_generated_alt' );
		update_post_meta( $object_id, '_alttext_source', 'human' );
		update_post_meta( $object_id, '_alttext_needs_review', 0 );
		delete_post_meta( $object_id, '_alttext_proposal' );
		delete_post_meta( $object_id, '_alttext_approved_by' );
	}

	/**
	 * Alt removed by hand: the AI marker goes with it.
	 *
	 * @param array  $meta_ids  Meta rows.
	 * @param int    $object_id Post.
	 * @param string $meta_key  Key.
	 */
	public static function on_alt_deleted( $meta_ids, $object_id, $meta_key ) {
		if ( self::ALT_KEY === $meta_key && ! self::$writing ) {
			delete_post_meta( $object_id, '_alttext_ai_generated' );
			delete_post_meta( $object_id, '_alttext_generated_alt' );
		}
	}

	/**
	 * Marks the current alt (or, when the alt is empty, the proposal) as reviewed by the current user.
	 *
	 * @param int $attachment_id Attachment.
	 */
	public static function approve( $attachment_id ) {
		$current  = (string) get_post_meta( $attachment_id, self::ALT_KEY, true );
		$proposal = (string) get_post_meta( $attachment_id, '_alttext_proposal', true );
		if ( '' === trim( $current ) && '' !== $proposal ) {
			self::write_alt( $attachment_id, $proposal );
			update_post_meta( $attachment_id, '_alttext_source', 'draft' );
		}
		delete_post_meta( $attachment_id, '_alttext_proposal' );
		update_post_meta( $attachment_id, '_alttext_needs_review', 0 );
		update_post_meta( $attachment_id, '_alttext_approved_by', get_current_user_id() );
	}

	/**
	 * Records a failure; a retryable one is queued for WP-Cron with backoff (or the service's Retry-After).
	 *
	 * @param int      $attachment_id Attachment.
	 * @param WP_Error $error         The failure.
	 */
	public static function failed( $attachment_id, WP_Error $error ) {
		Alttext_Settings::record_error( $error, $attachment_id );
		update_post_meta(
			$attachment_id,
			'_alttext_error',
			array(
				'code'    => $error->get_error_code(),
				'message' => $error->get_error_message(),
			)
		);
		$data     = (array) $error->get_error_data();
		$attempts = (int) get_post_meta( $attachment_id, '_alttext_attempts', true ) + 1;
		update_post_meta( $attachment_id, '_alttext_attempts', $attempts );
		if ( empty( $data['retryable'] ) || $attempts >= self::MAX_ATTEMPTS ) {
			delete_post_meta( $attachment_id, '_alttext_pending' );
			return;
		}
		$delay = ! empty( $data['retry_after'] ) ? (int) $data['retry_after'] : min( 6 * HOUR_IN_SECONDS, MINUTE_IN_SECONDS * ( 2 ** ( $attempts - 1 ) ) );
		/**
		 * Filters the delay before an attachment is retried.
		 *
		 * @param int      $delay         Seconds.
		 * @param int      $attempts      Failed attempts so far.
		 * @param WP_Error $error         The failure.
		 * @param int      $attachment_id Attachment.
		 */
		$delay = (int) apply_filters( 'alttext_retry_delay', $delay, $attempts, $error, $attachment_id );
		$when  = time() + max( 0, $delay );
		update_post_meta( $attachment_id, '_alttext_pending', $when );
		self::schedule( $when );
	}

	/**
	 * Makes sure a retry event runs no later than $when.
	 *
	 * @param int $when Unix time.
	 */
	public static function schedule( $when ) {
		$next = wp_next_scheduled( self::CRON_HOOK );
		if ( $next && $next <= $when ) {
			return;
		}
		if ( $next ) {
			wp_unschedule_event( $next, self::CRON_HOOK );
		}
		wp_schedule_single_event( $when, self::CRON_HOOK );
	}

	/**
	 * WP-Cron: retries the attachments whose retry time has come, then schedules the next run.
	 */
	public static function retry_pending() {
		$due = get_posts(
			array(
				'post_type'      => 'attachment',
				'post_status'    => 'inherit',
				'posts_per_page' => 20,
				'fields'         => 'ids',
				'orderby'        => 'ID',
				'order'          => 'ASC',
				'meta_query'     => array( // phpcs:ignore WordPress.DB.SlowDBQuery.slow_db_query_meta_query -- a handful of queued rows.
					array(
						'key'     => '_alttext_pending',
						'value'   => time(),
						'compare' => '<=',
						'type'    => 'NUMERIC',
					),
				),
			)
		);
		foreach ( $due as $attachment_id ) {
			$result = self::describe( $attachment_id );
			if ( is_wp_error( $result ) && 429 === ( isset( $result->get_error_data()['status'] ) ? $result->get_error_data()['status'] : 0 ) ) {
				break; // The service asked us to slow down; the rest waits for the next run.
			}
		}
		$next = self::next_pending_time();
		if ( $next ) {
			self::schedule( $next );
		}
	}

	/**
	 * Earliest queued retry time, or 0.
	 *
	 * @return int
	 */
	public static function next_pending_time() {
		$ids = get_posts(
			array(
				'post_type'      => 'attachment',
				'post_status'    => 'inherit',
				'posts_per_page' => 1,
				'fields'         => 'ids',
				'meta_key'       => '_alttext_pending', // phpcs:ignore WordPress.DB.SlowDBQuery.slow_db_query_meta_key -- queued rows only.
				'orderby'        => 'meta_value_num',
				'order'          => 'ASC',
			)
		);
		return $ids ? (int) get_post_meta( $ids[0], '_alttext_pending', true ) : 0;
	}

	/**
	 * Number of attachments waiting for a retry.
	 *
	 * @return int
	 */
	public static function pending_count() {
		$query = new WP_Query(
			array(
				'post_type'      => 'attachment',
				'post_status'    => 'inherit',
				'posts_per_page' => 1,
				'fields'         => 'ids',
				'meta_key'       => '_alttext_pending', // phpcs:ignore WordPress.DB.SlowDBQuery.slow_db_query_meta_key -- queued rows only.
			)
		);
		return (int) $query->found_posts;
	}
}
